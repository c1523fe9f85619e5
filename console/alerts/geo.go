package alerts

// inPolygon reports whether (lat, lon) is inside the polygon of [lat, lon]
// points (ray casting, on the plane of degrees: ports and quays are small
// enough that the earth's curvature does not matter, and no fence crosses
// the antimeridian in China's waters).
func inPolygon(poly [][2]float64, lat, lon float64) bool {
	inside := false
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		yi, xi := poly[i][0], poly[i][1]
		yj, xj := poly[j][0], poly[j][1]
		if (yi > lat) != (yj > lat) && lon < (xj-xi)*(lat-yi)/(yj-yi)+xi {
			inside = !inside
		}
	}
	return inside
}

// polygonArea is the polygon's area in square degrees (shoelace), zero for
// a degenerate one.
func polygonArea(poly [][2]float64) float64 {
	var a float64
	for i, j := 0, len(poly)-1; i < len(poly); j, i = i, i+1 {
		a += poly[j][1]*poly[i][0] - poly[i][1]*poly[j][0]
	}
	if a < 0 {
		a = -a
	}
	return a / 2
}
