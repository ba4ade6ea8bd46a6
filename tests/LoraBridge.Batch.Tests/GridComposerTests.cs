using LoraBridge.Batch;
using SkiaSharp;

namespace LoraBridge.Batch.Tests;

public class GridComposerTests
{
    private static byte[] SolidPng(int w, int h, SKColor color)
    {
        using var bmp = new SKBitmap(w, h);
        bmp.Erase(color);
        using var img = SKImage.FromBitmap(bmp);
        return img.Encode(SKEncodedImageFormat.Png, 100).ToArray();
    }

    [Fact]
    public void SheetHasCellsInPlaceAndInkInLabels()
    {
        var cells = new List<GridCell>();
        foreach (var y in new[] { "seed 1", "seed 2", "seed 3" })
            foreach (var x in new[] { "0.5", "1" })
                cells.Add(new GridCell(x, y, SolidPng(32, 24, x == "1" ? SKColors.Red : SKColors.Blue)));

        var (png, layout) = GridComposer.Compose(cells);
        using var sheet = SKBitmap.Decode(png);
        Assert.Equal((layout.Width, layout.Height), (sheet.Width, sheet.Height));
        Assert.Equal(layout.LabelWidth + 2 * 32, sheet.Width);
        Assert.Equal(layout.LabelHeight + 3 * 24, sheet.Height);
        Assert.Equal(["0.5", "1"], layout.Columns);
        Assert.Equal(["seed 1", "seed 2", "seed 3"], layout.Rows);

        // Column 1 is red, column 0 blue, at the centre of each cell of the last row.
        Assert.Equal(SKColors.Blue, sheet.GetPixel(layout.LabelWidth + 16, layout.LabelHeight + 2 * 24 + 12));
        Assert.Equal(SKColors.Red, sheet.GetPixel(layout.LabelWidth + 32 + 16, layout.LabelHeight + 2 * 24 + 12));

        // Labels are drawn: the top margin over each column and the left margin of each row contain dark pixels.
        Assert.True(HasInk(sheet, layout.LabelWidth, 0, 32, layout.LabelHeight));
        Assert.True(HasInk(sheet, layout.LabelWidth + 32, 0, 32, layout.LabelHeight));
        for (int r = 0; r < 3; r++) Assert.True(HasInk(sheet, 0, layout.LabelHeight + r * 24, layout.LabelWidth, 24));
        Assert.False(HasInk(sheet, 0, 0, layout.LabelWidth, layout.LabelHeight));
    }

    [Fact]
    public void MismatchedSizesAreRejected()
    {
        var cells = new[] { new GridCell("a", "b", SolidPng(8, 8, SKColors.Red)), new GridCell("c", "b", SolidPng(9, 8, SKColors.Red)) };
        Assert.Throws<ArgumentException>(() => GridComposer.Compose(cells));
    }

    private static bool HasInk(SKBitmap bmp, int x0, int y0, int w, int h)
    {
        for (int y = y0; y < y0 + h; y++)
            for (int x = x0; x < x0 + w; x++)
                if (bmp.GetPixel(x, y).Red < 128) return true;
        return false;
    }
}
