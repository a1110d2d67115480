package collect

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"

	"github.com/crawlctl/crawlctl/pkg/runstate"
)

// maxLegend is the most series a panel names in its legend.
const maxLegend = 10

// Panel tile size in pixels.
const (
	tileWidth  = 900
	tileHeight = 420
)

// writeOverview draws every panel, two columns wide, on one time axis, and
// writes the picture as PNG. (go-chart parses its font on first use, so the
// processes that never draw pay nothing for it.)
func writeOverview(path string, run *runstate.Run, ps []*PanelData, start, end time.Time) error {
	const cols = 2
	rows := (len(ps) + cols - 1) / cols
	canvas := image.NewRGBA(image.Rect(0, 0, cols*tileWidth, rows*tileHeight))
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for i, d := range ps {
		tile, err := renderPanel(d, start, end)
		if err != nil {
			return fmt.Errorf("drawing %s: %w", d.File, err)
		}
		at := image.Pt((i%cols)*tileWidth, (i/cols)*tileHeight)
		draw.Draw(canvas, image.Rectangle{Min: at, Max: at.Add(tile.Bounds().Size())}, tile, tile.Bounds().Min, draw.Over)
	}
	if len(ps)%cols != 0 { // the free tile names the run
		info := &PanelData{Panel: Panel{Title: fmt.Sprintf("run %s: %d URLs crawled, %d edges", run.ID, run.Counters.Crawled, run.Counters.EdgesWritten)}}
		tile, err := renderPanel(info, start, end)
		if err != nil {
			return err
		}
		at := image.Pt((len(ps)%cols)*tileWidth, (len(ps)/cols)*tileHeight)
		draw.Draw(canvas, image.Rectangle{Min: at, Max: at.Add(tile.Bounds().Size())}, tile, tile.Bounds().Min, draw.Over)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, canvas); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// renderPanel draws one panel as an image.
func renderPanel(d *PanelData, start, end time.Time) (image.Image, error) {
	var series []chart.Series
	ymax := 0.0
	for i, s := range d.Series {
		var xs []time.Time
		var ys []float64
		for _, t := range sortedTimes(s) {
			xs = append(xs, time.Unix(t, 0))
			ys = append(ys, s.Values[t])
			ymax = max(ymax, s.Values[t])
		}
		if len(xs) < 2 {
			continue
		}
		series = append(series, chart.TimeSeries{Name: s.Name, XValues: xs, YValues: ys,
			Style: chart.Style{StrokeColor: chart.GetDefaultColor(i), StrokeWidth: 1.5}})
	}
	title := d.Title
	switch {
	case len(series) == 0 && d.File != "":
		title += " (no data)"
	case len(d.Series) > maxLegend:
		title += fmt.Sprintf(" (%d series)", len(d.Series))
	}
	if len(series) == 0 { // go-chart needs a series to draw the axes
		series = append(series, chart.TimeSeries{XValues: []time.Time{start, end}, YValues: []float64{0, 0},
			Style: chart.Style{StrokeColor: drawing.ColorTransparent}})
	}
	if ymax == 0 {
		ymax = 1
	}
	c := chart.Chart{
		Title:      title,
		TitleStyle: chart.Style{FontSize: 11},
		Width:      tileWidth,
		Height:     tileHeight,
		Background: chart.Style{Padding: chart.Box{Top: 70, Left: 10, Right: 20, Bottom: 10}}, // title, then the legend
		XAxis: chart.XAxis{
			ValueFormatter: chart.TimeValueFormatterWithFormat(time.TimeOnly),
			Range:          &chart.ContinuousRange{Min: chart.TimeToFloat64(start), Max: chart.TimeToFloat64(end)},
		},
		YAxis: chart.YAxis{
			Name:  d.YLabel,
			Range: &chart.ContinuousRange{Min: 0, Max: ymax * 1.05},
			ValueFormatter: func(v any) string {
				if f, ok := v.(float64); ok {
					return fmt.Sprintf("%.4g", f)
				}
				return ""
			},
		},
		Series: series,
	}
	if len(d.Series) > 0 && len(d.Series) <= maxLegend {
		c.Elements = []chart.Renderable{chart.LegendThin(&c)}
	}
	var buf bytes.Buffer
	if err := c.Render(chart.PNG, &buf); err != nil {
		return nil, err
	}
	return png.Decode(&buf)
}
