package sqlite

// SetRestartFrames sets the WAL length (in frames) past which checkpoints
// start the WAL over, for a test; it returns the function that restores it.
func SetRestartFrames(n int64) (restore func()) {
	old := restartFrames
	restartFrames = n
	return func() { restartFrames = old }
}
