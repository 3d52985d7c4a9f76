-- Shared by the specs: a throwaway script file from a string.
local helpers = {}

function helpers.script(src)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

return helpers
