-- A script that never finishes loading: the load budget stops it.
while true do end
