package testenv

import (
	"image"
	"image/png"
	"os"
	"testing"
)

// DecodePNG reads the PNG picture at path, failing the test when it is
// missing or does not decode.
func DecodePNG(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}
