/* paths.h - where gcs finds its parts. In a build tree they sit next to
 * the gcs binary (build/libgc_lua.so, build/lua/gc/testing.so); installed,
 * below its prefix, <exe>/.. (lib/gcs/libgc_lua.so, GC_LUA_CMOD_DIR's
 * gc/testing.so): relative to the binary, so a DESTDIR tree works too. */
#ifndef GC_PATHS_H
#define GC_PATHS_H

/* The Lua adapter: $GC_LUA_ADAPTER, else the build tree's or the installed
 * one, whichever exists (gc_malloc'ed; NULL when out of memory). */
char *gc_paths_lua_adapter(void);

/* The folder whose "?.so" in package.cpath finds gc.testing (gc/testing.so)
 * for this gcs, or NULL when there is none (gc_malloc'ed). */
char *gc_paths_testing_cdir(void);

#endif
