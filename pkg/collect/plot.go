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
)

// maxLegend is the most series a panel names in its legend.
const maxLegend = 10

// Panel tile size in pixels.
const (
	tileWidth  = 900
	tileHeight = 420
)

// writeOverview draws every panel, two columns wide, on one time axis, and
// writes the picture as PNG; an odd last panel spans both columns, so no
// tile is left empty. (go-chart parses its font on first use, so the
// processes that never draw pay nothing for it.)
func writeOverview(path string, ps []*PanelData, start, end time.Time) error {
	const cols = 2
	rows := (len(ps) + cols - 1) / cols
	canvas := image.NewRGBA(image.Rect(0, 0, cols*tileWidth, rows*tileHeight))
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	for i, d := range ps {
		width := tileWidth
		if i == len(ps)-1 && i%cols == 0 {
			width = cols * tileWidth
		}
		tile, err := renderPanel(d, start, end, width)
		if err != nil {
			return fmt.Errorf("drawing %s: %w", d.File, err)
		}
		at := image.Pt((i%cols)*tileWidth, (i/cols)*tileHeight)
		draw.Draw(canvas, image.Rectangle{Min: at, Max: at.Add(tile.Bounds().Size())}, tile, tile.Bounds().Min, draw.Over)
	}
	return WritePNG(path, canvas)
}

// WritePNG writes img to path.
func WritePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// renderPanel draws one panel as an image.
func renderPanel(d *PanelData, start, end time.Time, width int) (image.Image, error) {
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
	yticks, ytop := NiceTicks(ymax, 5)
	c := chart.Chart{
		Title:      title,
		TitleStyle: chart.Style{FontSize: 11},
		Width:      width,
		Height:     tileHeight,
		Background: chart.Style{Padding: chart.Box{Top: 70, Left: 10, Right: 20, Bottom: 10}}, // title, then the legend
		XAxis: chart.XAxis{
			Range: &chart.ContinuousRange{Min: chart.TimeToFloat64(start), Max: chart.TimeToFloat64(end)},
			Ticks: TimeTicks(start, end, 8*width/tileWidth),
		},
		YAxis: chart.YAxis{
			Name:  d.YLabel,
			Range: &chart.ContinuousRange{Min: 0, Max: ytop},
			Ticks: yticks,
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
