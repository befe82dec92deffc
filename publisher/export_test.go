package publisher

// SetLoadCaughtUpHook lets a test act in the middle of Load.
func SetLoadCaughtUpHook(f func()) { loadCaughtUp = f }
