-- bench/hook_cost.lua - what a count hook costs plain Lua code:
--   taskset -c 0 lua5.4 bench/hook_cost.lua
-- Runs two loops without a hook, then with debug.sethook(f, "", 10000), the
-- kind of hook an instruction budget needs. Lua 5.4 then stops before every
-- VM instruction to count it, whatever the count. gcs's default time limit
-- (lua.time_limit_ms) sets no hook while scripts run.
local function arith(n) local s = 0 for i = 1, n do s = s + (i % 7) * 2 end return s end
local t = {}
local function tables(n) for i = 1, n do t[i % 100] = (t[(i + 1) % 100] or 0) + 1 end end
for _, case in ipairs{ { "arithmetic", arith }, { "table updates", tables } } do
  local name, f = case[1], case[2]
  local c = os.clock(); f(3e7); local plain = os.clock() - c
  debug.sethook(function() end, "", 10000)
  c = os.clock(); f(3e7); local hooked = os.clock() - c
  debug.sethook()
  print(string.format("%-14s no hook %.2f s, count hook %.2f s: %.2fx the time",
    name, plain, hooked, hooked / plain))
end
