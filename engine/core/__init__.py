"""The pure core: no sockets, no threads, no wall clock. Time is passed in."""
