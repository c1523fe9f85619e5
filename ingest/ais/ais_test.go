package ais

import (
	"math"
	"testing"

	goais "github.com/BertoldVdb/go-ais"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-3 }

// Sentences as published on the AIVDM/AIVDO decoding reference.
func TestDecodePublishedSentences(t *testing.T) {
	d := NewDecoder()
	r, err := d.Feed("!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C")
	if err != nil || r == nil {
		t.Fatalf("type 1: %v %v", r, err)
	}
	if r.MMSI != 477553000 || !r.HasPosition || !near(r.Lat, 47.582833) || !near(r.Lon, -122.345832) || r.SOG != 0 || !near(r.COG, 51) || r.Heading != 181 {
		t.Fatalf("type 1 decoded as %+v", r)
	}
	// Type 5 in two parts: nothing until the second.
	r, err = d.Feed("!AIVDM,2,1,1,A,55?MbV02;H;s<HtKR20EHE:0@T4@Dn2222222216L961O5Gf0NSQEp6ClRp8,0*1C")
	if err != nil || r != nil {
		t.Fatalf("first part: %v %v", r, err)
	}
	r, err = d.Feed("!AIVDM,2,2,1,A,88888888880,2*25")
	if err != nil || r == nil || r.MMSI != 351759000 || r.Name != "EVER DIADEM" || r.ShipType != 70 || r.HasPosition {
		t.Fatalf("type 5: %+v %v", r, err)
	}
}

func TestRoundTripOfEveryTypeWeMake(t *testing.T) {
	e, d := NewEncoder(), NewDecoder()
	for name, lines := range map[string][]string{
		"class A position": e.Position(412345678, 24.4475, 118.0712, 8.5, 135.2, 134),
		"class B position": e.ClassBPosition(412999001, 24.45, 118.08, 3.2, 270, 511),
		"class A static":   e.Static(412345678, "MIN HAI YU 01", 30),
	} {
		t.Run(name, func(t *testing.T) {
			var r *Report
			for _, l := range lines {
				got, err := d.Feed(l)
				if err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				if got != nil {
					r = got
				}
			}
			if r == nil {
				t.Fatalf("nothing decoded from %v", lines)
			}
			switch name {
			case "class A position":
				if r.MMSI != 412345678 || !near(r.Lat, 24.4475) || !near(r.Lon, 118.0712) || !near(r.SOG, 8.5) || !near(r.COG, 135.2) || r.Heading != 134 {
					t.Fatalf("%+v", r)
				}
			case "class B position":
				if r.MMSI != 412999001 || r.Heading != -1 || !near(r.SOG, 3.2) {
					t.Fatalf("%+v", r)
				}
			case "class A static":
				if r.Name != "MIN HAI YU 01" || r.ShipType != 30 {
					t.Fatalf("%+v", r)
				}
			}
		})
	}
}

func TestBadLines(t *testing.T) {
	d := NewDecoder()
	for _, l := range []string{
		"", "hello", "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",
		"!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5D", // checksum off by one
		"!AIVDM,1,1,,B,,0*",
	} {
		if r, err := d.Feed(l); err == nil && r != nil {
			t.Errorf("%q decoded as %+v", l, r)
		}
	}
}

func FuzzFeed(f *testing.F) {
	for _, s := range []string{
		"!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C",
		"!AIVDM,2,1,1,A,55?MbV02;H;s<HtKR20EHE:0@T4@Dn2222222216L961O5Gf0NSQEp6ClRp8,0*1C",
		"!AIVDM,2,2,1,A,88888888880,2*25",
		`\s:2156,c:1560234814*36\!AIVDM,1,1,,B,23aDqDOP0S0:mk2Kv3Ip=wvpR>` + "`" + `<,0*3D`,
	} {
		f.Add(s)
	}
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, line string) {
		r, err := d.Feed(line)
		if err != nil || r == nil {
			return
		}
		if r.HasPosition && (r.Lat < -90 || r.Lat > 90 || r.Lon < -180 || r.Lon > 180 || math.IsNaN(r.Lat)) {
			t.Fatalf("position out of range: %+v", r)
		}
	})
}

// Class B extended (19) and static (24, parts A and B) reports, encoded
// with go-ais the way a class B transponder sends them.
func TestClassBExtendedAndStatic(t *testing.T) {
	e, d := NewEncoder(), NewDecoder()
	feed := func(p goais.Packet) *Report {
		t.Helper()
		var r *Report
		for _, l := range e.encode(p) {
			got, err := d.Feed(l)
			if err != nil {
				t.Fatal(err)
			}
			if got != nil {
				r = got
			}
		}
		return r
	}
	r := feed(goais.ExtendedClassBPositionReport{Header: goais.Header{MessageID: 19, UserID: 412000019}, Valid: true,
		Latitude: 24.5, Longitude: 118.5, Sog: 4.4, Cog: 90, TrueHeading: 91, Name: "MIN SHI YU 19", Type: 30})
	if r == nil || !r.HasPosition || r.Name != "MIN SHI YU 19" || r.ShipType != 30 || r.Heading != 91 {
		t.Fatalf("type 19: %+v", r)
	}
	r = feed(goais.StaticDataReport{Header: goais.Header{MessageID: 24, UserID: 412000024}, Valid: true,
		ReportA: goais.StaticDataReportA{Valid: true, Name: "MIN SHI YU 24"}})
	if r == nil || r.Name != "MIN SHI YU 24" || r.HasPosition {
		t.Fatalf("type 24 part A: %+v", r)
	}
	r = feed(goais.StaticDataReport{Header: goais.Header{MessageID: 24, UserID: 412000024}, Valid: true, PartNumber: true,
		ReportB: goais.StaticDataReportB{Valid: true, ShipType: 30}})
	if r == nil || r.ShipType != 30 {
		t.Fatalf("type 24 part B: %+v", r)
	}
}
