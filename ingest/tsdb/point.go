package tsdb

// Point is one reading of one metric of one device at one time.
//
// A numeric reading has Value; a text reading (a fault code, a vessel's
// name) has IsText and Text. Booleans are numbers, 1 and 0.
type Point struct {
	Device string
	Metric string
	TS     int64 // Unix milliseconds
	Value  float64
	Text   string
	IsText bool
}
