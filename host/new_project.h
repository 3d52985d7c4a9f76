/* new_project.h - gcs --new NAME: a game project to start from. */
#ifndef GC_NEW_PROJECT_H
#define GC_NEW_PROJECT_H

/* Writes the folder 'path' (its last component names the game): a script,
 * its spec, a .busted, a config and a README. Returns gcs's exit status:
 * 0; 2 for a bad name or a folder (or file) that exists already, nothing
 * written; 1 when a file cannot be written. 'path' NULL: --new without a
 * value (2). */
int gc_new_project(const char *path);

#endif
