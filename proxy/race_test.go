//go:build race

package proxy

// raceDetector: built with -race, which changes allocation counts
// (sync.Pool drops items on purpose, instrumentation moves values to the
// heap).
const raceDetector = true
