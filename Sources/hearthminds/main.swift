import HearthCommands

// The one executable: bootstrap/bin/hm-<step> are links to it, and the name it runs by picks
// the command (see MultiCall).
await MultiCall.main()
