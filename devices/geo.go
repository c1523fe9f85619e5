package devices

import "math"

// earthRadiusM is the Earth's mean radius (IUGG), in metres.
const earthRadiusM = 6_371_008.8

// DistanceM returns the great-circle distance in metres between two points
// given in degrees, by the haversine formula on a sphere of the Earth's mean
// radius. On the ellipsoid the true distance differs by up to about 0.5%,
// which is far below what matters for finding the cameras near a device.
func DistanceM(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	φ1, φ2 := lat1*rad, lat2*rad
	dφ, dλ := (lat2-lat1)*rad, (lon2-lon1)*rad
	s1, s2 := math.Sin(dφ/2), math.Sin(dλ/2)
	h := s1*s1 + math.Cos(φ1)*math.Cos(φ2)*s2*s2
	// Rounding can push h a hair above 1 for antipodal points.
	return 2 * earthRadiusM * math.Asin(math.Sqrt(min(h, 1)))
}
