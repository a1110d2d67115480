package collect

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/crawlctl/crawlctl/internal/testenv"
	chart "github.com/wcharczuk/go-chart/v2"
)

// TestOverviewLeavesNoEmptyTile: seven panels on two columns, the last
// spanning both, so the bottom right of the picture is drawn on too.
func TestOverviewLeavesNoEmptyTile(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	var ps []*PanelData
	for i, p := range Panels {
		d := &PanelData{Panel: p}
		s := Series{Name: "s", Values: map[int64]float64{}}
		for k := int64(0); k <= 60; k += 5 {
			d.Times = append(d.Times, start.Unix()+k)
			s.Values[start.Unix()+k] = float64((k + int64(i)) % 17)
		}
		d.Series = []Series{s}
		ps = append(ps, d)
	}
	if len(ps)%2 != 1 {
		t.Skipf("%d panels: the test is for an odd count", len(ps))
	}
	path := filepath.Join(t.TempDir(), "overview.png")
	if err := writeOverview(path, ps, start, start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	img := testenv.DecodePNG(t, path)
	rows := (len(ps) + 1) / 2
	if b := img.Bounds(); b.Dx() != 2*tileWidth || b.Dy() != rows*tileHeight {
		t.Fatalf("picture %v, want %dx%d", b, 2*tileWidth, rows*tileHeight)
	}
	// The series' own colour (not just axes and a title) in the bottom
	// right.
	line := chart.GetDefaultColor(0)
	drawn := 0
	for y := (rows - 1) * tileHeight; y < rows*tileHeight; y++ {
		for x := tileWidth; x < 2*tileWidth; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r, line.R) && near(g, line.G) && near(b, line.B) {
				drawn++
			}
		}
	}
	if drawn < 50 {
		t.Errorf("the bottom-right tile has %d pixels of a series: no chart is drawn there", drawn)
	}
}

func near(c uint32, want uint8) bool { d := int(c>>8) - int(want); return d > -24 && d < 24 }
