// Package ais decodes AIS NMEA 0183 sentences (!AIVDM/!AIVDO) from an AIS
// receiver into vessel reports, with go-ais and go-nmea doing the bit work:
// multi-part sentences are reassembled, and message types 1/2/3 (class A
// position), 5 (class A static and voyage), 18 (class B position), 19
// (class B extended position) and 24 (class B static) are understood.
//
// It also encodes reports into sentences, for the simulator and the tests.
package ais

import (
	"errors"
	"fmt"
	"strings"

	goais "github.com/BertoldVdb/go-ais"
	"github.com/BertoldVdb/go-ais/aisnmea"
)

// Report is what one AIS message says of a vessel.
type Report struct {
	MMSI uint32
	// Position reports (types 1, 2, 3, 18, 19).
	HasPosition bool
	Lat, Lon    float64 // degrees
	SOG         float64 // knots; -1 when not available
	COG         float64 // degrees; -1 when not available
	Heading     float64 // degrees; -1 when not available
	// Static reports (types 5, 19, 24).
	Name     string
	ShipType int // 0 when not given
}

// ErrNotAIS is returned for a line that is not a VDM/VDO sentence.
var ErrNotAIS = errors.New("not an AIS VDM/VDO sentence")

// Decoder decodes the sentences of one receiver. Multi-part messages are
// reassembled across calls, so each receiver needs its own Decoder; it is
// not safe for concurrent use.
type Decoder struct {
	nmea *aisnmea.NMEACodec
}

// NewDecoder returns a decoder with no partial messages.
func NewDecoder() *Decoder {
	return &Decoder{nmea: aisnmea.NMEACodecNew(goais.CodecNew(false, false))}
}

// Feed decodes one line. It returns nil, nil for a part of a multi-part
// message still waiting for the rest, and for message types that say
// nothing about a vessel's position or identity.
func (d *Decoder) Feed(line string) (*Report, error) {
	line = strings.TrimSpace(line)
	// A sentence starts with '!', or with a tag block (\s:...*hh\) before it.
	if !strings.HasPrefix(line, "!") && !strings.HasPrefix(line, `\`) {
		return nil, ErrNotAIS
	}
	if len(line) > 200 {
		return nil, fmt.Errorf("sentence of %d characters, over 200", len(line))
	}
	pkt, err := d.nmea.ParseSentence(line)
	if err != nil {
		return nil, err
	}
	if pkt == nil || pkt.Packet == nil {
		return nil, nil
	}
	return fromPacket(pkt.Packet), nil
}

func fromPacket(p goais.Packet) *Report {
	r := &Report{MMSI: p.GetHeader().UserID}
	setPos := func(lat, lon goais.FieldLatLonFine, sog, cog goais.Field10, heading uint16) {
		// 91 and 181 say "not available".
		if float64(lat) <= 90 && float64(lat) >= -90 && float64(lon) <= 180 && float64(lon) >= -180 {
			r.HasPosition, r.Lat, r.Lon = true, float64(lat), float64(lon)
		}
		r.SOG, r.COG, r.Heading = float64(sog), float64(cog), float64(heading)
		if r.SOG >= 102.3 {
			r.SOG = -1
		}
		if r.COG >= 360 {
			r.COG = -1
		}
		if heading >= 360 { // 511: not available
			r.Heading = -1
		}
	}
	switch m := p.(type) {
	case goais.PositionReport:
		setPos(m.Latitude, m.Longitude, m.Sog, m.Cog, m.TrueHeading)
	case goais.StandardClassBPositionReport:
		setPos(m.Latitude, m.Longitude, m.Sog, m.Cog, m.TrueHeading)
	case goais.ExtendedClassBPositionReport:
		setPos(m.Latitude, m.Longitude, m.Sog, m.Cog, m.TrueHeading)
		r.Name, r.ShipType = cleanName(m.Name), int(m.Type)
	case goais.ShipStaticData:
		r.Name, r.ShipType = cleanName(m.Name), int(m.Type)
	case goais.StaticDataReport:
		if m.PartNumber {
			r.ShipType = int(m.ReportB.ShipType)
		} else {
			r.Name = cleanName(m.ReportA.Name)
		}
	default:
		return nil
	}
	if !r.HasPosition && r.Name == "" && r.ShipType == 0 {
		return nil
	}
	return r
}

// cleanName trims AIS padding ('@' and spaces).
func cleanName(s string) string { return strings.TrimSpace(strings.TrimRight(s, "@ ")) }

// Encoder makes sentences, for simulated vessels and tests.
type Encoder struct {
	nmea *aisnmea.NMEACodec
}

// NewEncoder returns an encoder.
func NewEncoder() *Encoder {
	return &Encoder{nmea: aisnmea.NMEACodecNew(goais.CodecNew(false, false))}
}

// Position encodes a class A position report (type 1).
func (e *Encoder) Position(mmsi uint32, lat, lon, sog, cog float64, heading int) []string {
	return e.encode(goais.PositionReport{
		Header: goais.Header{MessageID: 1, UserID: mmsi}, Valid: true,
		Latitude: goais.FieldLatLonFine(lat), Longitude: goais.FieldLatLonFine(lon),
		Sog: goais.Field10(sog), Cog: goais.Field10(cog), TrueHeading: uint16(heading),
	})
}

// ClassBPosition encodes a class B position report (type 18).
func (e *Encoder) ClassBPosition(mmsi uint32, lat, lon, sog, cog float64, heading int) []string {
	return e.encode(goais.StandardClassBPositionReport{
		Header: goais.Header{MessageID: 18, UserID: mmsi}, Valid: true,
		Latitude: goais.FieldLatLonFine(lat), Longitude: goais.FieldLatLonFine(lon),
		Sog: goais.Field10(sog), Cog: goais.Field10(cog), TrueHeading: uint16(heading),
	})
}

// Static encodes class A static and voyage data (type 5), two sentences.
func (e *Encoder) Static(mmsi uint32, name string, shipType int) []string {
	return e.encode(goais.ShipStaticData{
		Header: goais.Header{MessageID: 5, UserID: mmsi}, Valid: true,
		Name: name, Type: uint8(shipType), CallSign: "", Destination: "",
	})
}

func (e *Encoder) encode(p goais.Packet) []string {
	return e.nmea.EncodeSentence(aisnmea.VdmPacket{Channel: 'A', TalkerID: "AI", MessageType: "VDM", Packet: p})
}
