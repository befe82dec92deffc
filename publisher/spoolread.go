package publisher

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"

	"github.com/cecbridge/cecbridge/schemas"
)

// ReadSpool reads, without changing anything, the records a publisher left
// in its spool directory, oldest first: what a process that died during an
// outage had accepted and not published. torn counts the records cut short
// at the end of a segment or failing their checksum. It is for inspection
// (the chaos drill, an operator); a publisher discards such a spool at
// start.
func ReadSpool(dir string) (recs []schemas.Record, torn int, err error) {
	names, err := filepath.Glob(filepath.Join(dir, segPrefix+"*"+segSuffix))
	if err != nil {
		return nil, 0, fmt.Errorf("publisher: spool %s: %w", dir, err)
	}
	slices.Sort(names) // zero-padded segment numbers
	for _, name := range names {
		b, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // read back and removed meanwhile
		}
		if err != nil {
			return recs, torn, fmt.Errorf("publisher: spool: %w", err)
		}
		for len(b) > 0 {
			if len(b) < recFrame {
				torn++
				break
			}
			l := int(binary.BigEndian.Uint32(b[:4]))
			if l < recHeader || len(b) < recFrame+l {
				torn++
				break
			}
			sum := binary.BigEndian.Uint32(b[4:recFrame])
			payload := b[recFrame : recFrame+l]
			b = b[recFrame+l:]
			rec, err := decodeRecord(payload)
			if err != nil || crc32.Checksum(payload, crcTable) != sum {
				torn++
				continue
			}
			recs = append(recs, rec)
		}
	}
	return recs, torn, nil
}
