//go:build race

package rtc

// raceEnabled is set under the race detector, which makes sync.Pool drop
// items at random and so changes allocation counts.
const raceEnabled = true
