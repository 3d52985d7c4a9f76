-- busted --helper: run the collector as often as Lua allows, in the spec's
-- state and (through GC_TESTING_AGGRESSIVE_GC) in every script's state.
collectgarbage("incremental", 1, 100)
