package collect

import (
	"fmt"
	"os"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/crawlctl/crawlctl/pkg/runstate"
)

// maxLegend is the most series a panel names in its legend.
const maxLegend = 10

// writeOverview draws every panel on one picture, two columns wide.
func writeOverview(path string, run *runstate.Run, ps []*PanelData, start, end time.Time) error {
	const cols = 2
	rows := (len(ps) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, d := range ps {
		p, err := panelPlot(d)
		if err != nil {
			return err
		}
		p.X.Min, p.X.Max = float64(start.Unix()), float64(end.Unix()) // one time axis for all
		grid[i/cols][i%cols] = p
	}
	for r := range grid {
		for c := range grid[r] {
			if grid[r][c] == nil {
				p := plot.New()
				p.HideAxes()
				p.Title.Text = fmt.Sprintf("run %s — %d URLs crawled", run.ID, run.Counters.Crawled)
				grid[r][c] = p
			}
		}
	}
	img := vgimg.New(vg.Points(1400), vg.Points(float64(330*rows)))
	dc := draw.New(img)
	t := draw.Tiles{Rows: rows, Cols: cols, PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10),
		PadRight: vg.Points(10), PadX: vg.Points(20), PadY: vg.Points(20)}
	canvases := plot.Align(grid, t, dc)
	for r := range grid {
		for c := range grid[r] {
			grid[r][c].Draw(canvases[r][c])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func panelPlot(d *PanelData) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = d.Title
	if len(d.Series) > maxLegend {
		p.Title.Text += fmt.Sprintf(" (%d series)", len(d.Series))
	}
	p.Y.Label.Text = d.YLabel
	p.X.Tick.Marker = plot.TimeTicks{Format: time.TimeOnly}
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	for i, s := range d.Series {
		var xys plotter.XYs
		for _, t := range sortedTimes(s) {
			xys = append(xys, plotter.XY{X: float64(t), Y: s.Values[t]})
		}
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.2)
		p.Add(l)
		if len(d.Series) <= maxLegend {
			p.Legend.Add(s.Name, l)
		}
		p.Y.Max = max(p.Y.Max, maxY(xys)*1.05)
	}
	if len(d.Series) == 0 {
		p.Title.Text += " (no data)"
	}
	return p, nil
}

func maxY(xys plotter.XYs) float64 {
	m := 0.0
	for _, xy := range xys {
		m = max(m, xy.Y)
	}
	return m
}
