--[[ lib/json.lua - a small JSON encoder and decoder for the example scripts,
so they need no installed module (Debian's lua-cjson or lua-dkjson work as
well: require "cjson").

  local json = require "lib.json"
  json.encode({ type = "state", players = json.array({}) })
    --> {"players":[],"type":"state"}
  json.decode('{"x": 1, "y": [true, null]}')  --> { x = 1, y = { true } }

encode: object keys are sorted, so the output is deterministic (tests can
compare strings); a table is an array when its keys are exactly 1..#t, and
an empty table is {} unless wrapped with json.array. Integers are written
without a fraction. Cycles, functions and NaN raise an error.
decode: returns the value, or nil and a message. Integral numbers become
Lua integers; null becomes json.null (a unique value, falsy fields are
better checked with == json.null). ]]
local json = {}

local array_mt = { __name = "json.array" }
json.null = setmetatable({}, { __name = "json.null", __tostring = function() return "null" end })

function json.array(t)
  return setmetatable(t or {}, array_mt)
end

local escapes = {
  ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
  ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t',
}

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = #t
  if n == 0 then return getmetatable(t) == array_mt end
  local count = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
    count = count + 1
  end
  return count == n
end

local encode_value

local function encode_table(t, out, seen)
  if seen[t] then error("json.encode: cycle in table", 0) end
  seen[t] = true
  if is_array(t) then
    out[#out + 1] = "["
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], out, seen)
    end
    out[#out + 1] = "]"
  else
    local keys = {}
    for k in pairs(t) do
      if type(k) ~= "string" and type(k) ~= "number" then
        error("json.encode: key of type " .. type(k), 0)
      end
      keys[#keys + 1] = tostring(k)
    end
    table.sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = encode_string(k)
      out[#out + 1] = ":"
      local v = t[k]
      if v == nil then v = t[tonumber(k)] end
      encode_value(v, out, seen)
    end
    out[#out + 1] = "}"
  end
  seen[t] = nil
end

function encode_value(v, out, seen)
  local ty = type(v)
  if v == nil or v == json.null then
    out[#out + 1] = "null"
  elseif ty == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif ty == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      error("json.encode: " .. tostring(v) .. " is not a JSON number", 0)
    end
    if math.type(v) == "integer" then
      out[#out + 1] = string.format("%d", v)
    else
      out[#out + 1] = string.format("%.14g", v)
    end
  elseif ty == "string" then
    out[#out + 1] = encode_string(v)
  elseif ty == "table" then
    encode_table(v, out, seen)
  else
    error("json.encode: cannot encode a " .. ty, 0)
  end
end

function json.encode(v)
  local out = {}
  encode_value(v, out, {})
  return table.concat(out)
end

-- Decoder: recursive descent over the string; 'pos' is the next byte.

local decode_value

local function skip(s, pos)
  return s:find("[^ \t\r\n]", pos) or #s + 1
end

local function fail(pos, what)
  error({ json_error = string.format("json.decode: %s at byte %d", what, pos) })
end

local simple = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
                 ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }

local function decode_string(s, pos)
  local parts, i = {}, pos + 1
  while true do
    local c = s:sub(i, i)
    if c == "" then fail(pos, "unterminated string") end
    if c == '"' then return table.concat(parts), i + 1 end
    if c == "\\" then
      local e = s:sub(i + 1, i + 1)
      if simple[e] then
        parts[#parts + 1] = simple[e]
        i = i + 2
      elseif e == "u" then
        local hex = s:match("^%x%x%x%x", i + 2)
        if not hex then fail(i, "bad \\u escape") end
        local cp = tonumber(hex, 16)
        i = i + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = s:match("^\\u(%x%x%x%x)", i)
          if lo then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (tonumber(lo, 16) - 0xDC00)
            i = i + 6
          end
        end
        parts[#parts + 1] = utf8.char(cp)
      else
        fail(i, "bad escape")
      end
    elseif c:byte() < 32 then
      fail(i, "control character in string")
    else
      local j = s:find('["\\%c]', i) or #s + 1
      parts[#parts + 1] = s:sub(i, j - 1)
      i = j
    end
  end
end

function decode_value(s, pos, depth)
  if depth > 64 then fail(pos, "too deeply nested") end
  pos = skip(s, pos)
  local c = s:sub(pos, pos)
  if c == "{" then
    local t = {}
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == "}" then return t, pos + 1 end
    while true do
      if s:sub(pos, pos) ~= '"' then fail(pos, "object key expected") end
      local k
      k, pos = decode_string(s, pos)
      pos = skip(s, pos)
      if s:sub(pos, pos) ~= ":" then fail(pos, "':' expected") end
      t[k], pos = decode_value(s, pos + 1, depth + 1)
      pos = skip(s, pos)
      local d = s:sub(pos, pos)
      if d == "}" then return t, pos + 1 end
      if d ~= "," then fail(pos, "',' or '}' expected") end
      pos = skip(s, pos + 1)
    end
  elseif c == "[" then
    local t, n = json.array(), 0
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == "]" then return t, pos + 1 end
    while true do
      n = n + 1
      t[n], pos = decode_value(s, pos, depth + 1)
      pos = skip(s, pos)
      local d = s:sub(pos, pos)
      if d == "]" then return t, pos + 1 end
      if d ~= "," then fail(pos, "',' or ']' expected") end
      pos = pos + 1
    end
  elseif c == '"' then
    return decode_string(s, pos)
  elseif s:find("^true", pos) then
    return true, pos + 4
  elseif s:find("^false", pos) then
    return false, pos + 5
  elseif s:find("^null", pos) then
    return json.null, pos + 4
  else
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not num or num == "" or num == "-" then fail(pos, "unexpected character") end
    local v = tonumber(num)
    if not v then fail(pos, "bad number") end
    return math.tointeger(v) or v, pos + #num
  end
end

function json.decode(s)
  if type(s) ~= "string" then return nil, "json.decode: string expected" end
  local ok, v, pos = pcall(decode_value, s, 1, 0)
  if not ok then
    if type(v) == "table" and v.json_error then return nil, v.json_error end
    error(v, 0)
  end
  pos = skip(s, pos)
  if pos <= #s then return nil, string.format("json.decode: trailing data at byte %d", pos) end
  return v
end

return json
