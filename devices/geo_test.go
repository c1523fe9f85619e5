package devices

import (
	"math"
	"testing"
)

func TestDistanceM(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want, tolerance        float64
	}{
		{"same point", 27.2, 102.9, 27.2, 102.9, 0, 0},
		// One degree of arc on the mean sphere is 2πR/360.
		{"one degree along a meridian", 0, 0, 1, 0, 111_195.08, 0.01},
		{"one degree along the equator", 0, 179.5, 0, -179.5, 111_195.08, 0.01},
		{"pole to pole", 90, 0, -90, 0, math.Pi * earthRadiusM, 0.001},
		{"antipodes", 27.2, 102.9, -27.2, -77.1, math.Pi * earthRadiusM, 0.001},
		// Nashville (BNA) to Los Angeles (LAX), the classic haversine
		// example: 2887.26 km on a sphere of radius 6372.8 km, scaled to
		// the mean radius.
		{"BNA to LAX", 36.12, -86.67, 33.94, -118.40, 2_887_259.95 * earthRadiusM / 6_372_800, 1},
		// One degree of longitude at 60° north is about half of one at
		// the equator (2R·asin(cos 60° · sin 0.5°)).
		{"one degree of longitude at 60N", 60, 10, 60, 11, 55_597.27, 1},
		// A short hop: 0.001° of latitude is about 111 m anywhere.
		{"111 m north", 27.2, 102.9, 27.201, 102.9, 111.195, 0.001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DistanceM(tt.lat1, tt.lon1, tt.lat2, tt.lon2)
			if math.Abs(got-tt.want) > tt.tolerance {
				t.Fatalf("DistanceM = %.3f m, want %.3f ± %g", got, tt.want, tt.tolerance)
			}
			if back := DistanceM(tt.lat2, tt.lon2, tt.lat1, tt.lon1); math.Abs(back-got) > 1e-6 {
				t.Fatalf("not symmetric: %.6f and %.6f", got, back)
			}
		})
	}
}
