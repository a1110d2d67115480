package experiment

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"

	"github.com/crawlctl/crawlctl/pkg/collect"
)

// The comparison picture: two charts side by side.
const (
	plotWidth  = 900
	plotHeight = 480
)

// writeComparison draws the total frontier lag over time of each
// scenario's median run, overlaid, and each scenario's drain time as a bar
// (the median) with min–max whiskers.
func writeComparison(path string, rep *Report) error {
	lag, err := lagChart(rep)
	if err != nil {
		return err
	}
	bars, err := drainChart(rep)
	if err != nil {
		return err
	}
	canvas := image.NewRGBA(image.Rect(0, 0, 2*plotWidth, plotHeight))
	draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(canvas, lag.Bounds(), lag, image.Point{}, draw.Over)
	draw.Draw(canvas, lag.Bounds().Add(image.Pt(plotWidth, 0)), bars, image.Point{}, draw.Over)
	return collect.WritePNG(path, canvas)
}

// totalLag reads a run's frontier lag (csv_data/frontier_lag.csv, a
// column per partition) summed, against seconds since its first row.
func totalLag(dir string) (xs, ys []float64, err error) {
	f, err := os.Open(filepath.Join(dir, "csv_data", "frontier_lag.csv"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, nil, err
	}
	var t0 time.Time
	for i, row := range rows {
		if i == 0 || len(row) == 0 {
			continue
		}
		t, err := time.Parse(time.RFC3339, row[0])
		if err != nil {
			return nil, nil, fmt.Errorf("%s: row %d: %w", f.Name(), i+1, err)
		}
		if t0.IsZero() {
			t0 = t
		}
		sum := 0.0
		for _, c := range row[1:] {
			v, _ := strconv.ParseFloat(c, 64)
			sum += v
		}
		xs, ys = append(xs, t.Sub(t0).Seconds()), append(ys, sum)
	}
	return xs, ys, nil
}

func lagChart(rep *Report) (image.Image, error) {
	var series []chart.Series
	xmax, ymax := 1.0, 1.0
	for i, row := range rep.Rows {
		xs, ys, err := totalLag(row.Median.Dir)
		if err != nil {
			return nil, err
		}
		if len(xs) < 2 {
			continue
		}
		for j := range xs {
			xmax, ymax = max(xmax, xs[j]), max(ymax, ys[j])
		}
		series = append(series, chart.ContinuousSeries{Name: fmt.Sprintf("%s (run %d)", row.Scenario, row.Median.Repeat), XValues: xs, YValues: ys,
			Style: chart.Style{StrokeColor: chart.GetDefaultColor(i), StrokeWidth: 2}})
	}
	if len(series) == 0 {
		return nil, fmt.Errorf("no run has a frontier lag series to draw")
	}
	xticks, xtop := collect.NiceTicks(xmax, 8)
	yticks, ytop := collect.NiceTicks(ymax, 5)
	c := chart.Chart{
		Title: "Total frontier lag, median run of each scenario", TitleStyle: chart.Style{FontSize: 12},
		Width: plotWidth, Height: plotHeight,
		Background: chart.Style{Padding: chart.Box{Top: 70, Left: 10, Right: 20, Bottom: 10}},
		XAxis:      chart.XAxis{Name: "seconds since the run started", Range: &chart.ContinuousRange{Min: 0, Max: xtop}, Ticks: xticks},
		YAxis:      chart.YAxis{Name: "records", Range: &chart.ContinuousRange{Min: 0, Max: ytop}, Ticks: yticks},
		Series:     series,
	}
	c.Elements = []chart.Renderable{chart.LegendThin(&c)}
	return render(&c)
}

// drainChart draws a bar per scenario up to its median drain time, with a
// whisker from the fastest run to the slowest.
func drainChart(rep *Report) (image.Image, error) {
	var series []chart.Series
	var xticks []chart.Tick
	ymax := 1.0
	for i, row := range rep.Rows {
		x := float64(i + 1)
		ymax = max(ymax, row.Drain.Max)
		bar := chart.Style{StrokeColor: chart.GetDefaultColor(i), StrokeWidth: 60}
		whisker := chart.Style{StrokeColor: drawing.ColorBlack, StrokeWidth: 2}
		series = append(series,
			chart.ContinuousSeries{XValues: []float64{x, x}, YValues: []float64{0, row.Drain.Median}, Style: bar},
			chart.ContinuousSeries{XValues: []float64{x, x}, YValues: []float64{row.Drain.Min, row.Drain.Max}, Style: whisker},
			chart.ContinuousSeries{XValues: []float64{x - 0.12, x + 0.12}, YValues: []float64{row.Drain.Min, row.Drain.Min}, Style: whisker},
			chart.ContinuousSeries{XValues: []float64{x - 0.12, x + 0.12}, YValues: []float64{row.Drain.Max, row.Drain.Max}, Style: whisker})
		xticks = append(xticks, chart.Tick{Value: x, Label: row.Scenario})
	}
	yticks, ytop := collect.NiceTicks(ymax, 5)
	c := chart.Chart{
		Title: "Drain time per scenario: median, min–max", TitleStyle: chart.Style{FontSize: 12},
		Width: plotWidth, Height: plotHeight,
		Background: chart.Style{Padding: chart.Box{Top: 70, Left: 10, Right: 20, Bottom: 10}},
		XAxis: chart.XAxis{Range: &chart.ContinuousRange{Min: 0.4, Max: float64(len(rep.Rows)) + 0.6},
			Ticks: append([]chart.Tick{{Value: 0.4}}, append(xticks, chart.Tick{Value: float64(len(rep.Rows)) + 0.6})...)},
		YAxis:  chart.YAxis{Name: "seconds to drain", Range: &chart.ContinuousRange{Min: 0, Max: ytop}, Ticks: yticks},
		Series: series,
	}
	return render(&c)
}

func render(c *chart.Chart) (image.Image, error) {
	var buf bytes.Buffer
	if err := c.Render(chart.PNG, &buf); err != nil {
		return nil, err
	}
	return png.Decode(&buf)
}
