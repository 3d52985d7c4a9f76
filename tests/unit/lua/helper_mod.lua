-- A module found next to harness.lua through package.path.
return { answer = 42 }
