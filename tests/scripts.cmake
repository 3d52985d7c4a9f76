# busted specs of the scripts (tests/scripts/*_spec.lua), run by ctest with
# the gc.testing module of this build. Under the sanitizers the Lua
# interpreter is not instrumented, so ASan's runtime is preloaded.
find_program(BUSTED busted)
if(NOT BUSTED)
  message(FATAL_ERROR "busted not found: apt-get install lua-busted (make test does it)")
endif()
set(GC_BUSTED_ENV "GC_LUA_ADAPTER=${CMAKE_BINARY_DIR}/libgc_lua.so")
if(GC_SANITIZE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE GC_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND GC_BUSTED_ENV "LD_PRELOAD=${GC_LIBASAN}"
       "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
       "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp")
endif()
if(GC_TSAN)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libtsan.so
                  OUTPUT_VARIABLE GC_LIBTSAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND GC_BUSTED_ENV "LD_PRELOAD=${GC_LIBTSAN}" "TSAN_OPTIONS=halt_on_error=1")
endif()
add_test(NAME busted.scripts
         COMMAND ${BUSTED} --cpath=${CMAKE_BINARY_DIR}/lua/?.so --output=TAP
                 tests/scripts
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(busted.scripts PROPERTIES TIMEOUT 120 ENVIRONMENT "${GC_BUSTED_ENV}")
# The same suite with the collector made continuous, so a missing registry
# anchor fails here rather than as a rare crash (luv's "aggressive GC").
add_test(NAME busted.scripts.aggressive_gc
         COMMAND ${BUSTED} --cpath=${CMAKE_BINARY_DIR}/lua/?.so --output=TAP
                 --helper=tests/scripts/helper_aggressive_gc.lua tests/scripts
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(busted.scripts.aggressive_gc PROPERTIES TIMEOUT 300
                     ENVIRONMENT "${GC_BUSTED_ENV};GC_TESTING_AGGRESSIVE_GC=1")
