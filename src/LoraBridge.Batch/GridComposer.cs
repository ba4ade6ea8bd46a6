using SkiaSharp;

namespace LoraBridge.Batch;

/// <summary>One image of an X/Y sweep with its column and row labels.</summary>
/// <param name="X">Column label.</param>
/// <param name="Y">Row label.</param>
/// <param name="Png">The image as PNG bytes.</param>
public sealed record GridCell(string X, string Y, byte[] Png);

/// <summary>Where <see cref="GridComposer"/> put things, so callers and tests can check the layout.</summary>
/// <param name="Width">Sheet width in pixels.</param>
/// <param name="Height">Sheet height in pixels.</param>
/// <param name="Columns">Column labels, left to right.</param>
/// <param name="Rows">Row labels, top to bottom.</param>
/// <param name="LabelWidth">Width of the row-label margin on the left.</param>
/// <param name="LabelHeight">Height of the column-label margin on top.</param>
/// <param name="CellWidth">Width of one cell.</param>
/// <param name="CellHeight">Height of one cell.</param>
public sealed record GridLayout(int Width, int Height, IReadOnlyList<string> Columns, IReadOnlyList<string> Rows,
    int LabelWidth, int LabelHeight, int CellWidth, int CellHeight);

/// <summary>Composes a labelled contact sheet PNG for an X/Y sweep, like A1111's X/Y/Z plot.</summary>
public static class GridComposer
{
    private static readonly string[] FontCandidates =
    [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ];

    /// <summary>
    /// Lays the cells out with columns in first-appearance order of X and rows in first-appearance order of Y.
    /// Missing cells stay white. Every cell must have the same image size.
    /// </summary>
    public static (byte[] Png, GridLayout Layout) Compose(IReadOnlyList<GridCell> cells, float fontSize = 14f)
    {
        if (cells.Count == 0) throw new ArgumentException("a grid needs at least one image", nameof(cells));
        var columns = cells.Select(c => c.X).Distinct().ToList();
        var rows = cells.Select(c => c.Y).Distinct().ToList();

        var images = cells.Select(c => SKBitmap.Decode(c.Png) ?? throw new ArgumentException($"cell ({c.X}, {c.Y}) is not a readable image")).ToList();
        try
        {
            int cellW = images[0].Width, cellH = images[0].Height;
            if (images.Any(i => i.Width != cellW || i.Height != cellH))
                throw new ArgumentException("all grid images must have the same size");

            using var typeface = LoadTypeface();
            using var font = new SKFont(typeface, fontSize);
            int labelH = (int)Math.Ceiling(fontSize * 2);
            int labelW = (int)Math.Ceiling(rows.Max(r => font.MeasureText(r)) + fontSize);
            int width = labelW + columns.Count * cellW, height = labelH + rows.Count * cellH;

            using var sheet = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
            using (var canvas = new SKCanvas(sheet))
            using (var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true })
            {
                canvas.Clear(SKColors.White);
                for (int c = 0; c < columns.Count; c++)
                    canvas.DrawText(columns[c], labelW + c * cellW + cellW / 2f, labelH - fontSize * 0.6f, SKTextAlign.Center, font, ink);
                for (int r = 0; r < rows.Count; r++)
                    canvas.DrawText(rows[r], fontSize / 2f, labelH + r * cellH + cellH / 2f + fontSize / 3f, SKTextAlign.Left, font, ink);
                for (int k = 0; k < cells.Count; k++)
                {
                    int c = columns.IndexOf(cells[k].X), r = rows.IndexOf(cells[k].Y);
                    using var cellImage = SKImage.FromBitmap(images[k]);
                    canvas.DrawImage(cellImage, labelW + c * cellW, labelH + r * cellH, SKSamplingOptions.Default, null);
                }
            }
            using var image = SKImage.FromBitmap(sheet);
            using var data = image.Encode(SKEncodedImageFormat.Png, 100);
            return (data.ToArray(), new GridLayout(width, height, columns, rows, labelW, labelH, cellW, cellH));
        }
        finally
        {
            foreach (var i in images) i.Dispose();
        }
    }

    private static SKTypeface LoadTypeface()
    {
        // The NoDependencies native build has no fontconfig, so the default typeface draws nothing: load a file.
        foreach (var path in FontCandidates)
        {
            if (File.Exists(path) && SKTypeface.FromFile(path) is { } face) return face;
        }
        throw new InvalidOperationException("no font found for grid labels; install fonts-dejavu-core (looked in: " + string.Join(", ", FontCandidates) + ")");
    }
}
