namespace LoraBridge.Tui;

/// <summary>
/// An image fitted to a panel of terminal cells, two pixels per cell: the upper half block '▀' drawn with the upper
/// pixel as foreground and the lower one as background. A terminal cell is about twice as tall as wide, so the two
/// halves are close to square pixels and the picture keeps its aspect ratio.
/// </summary>
/// <param name="Left">Column of the picture's first cell in the panel (the picture is centred horizontally).</param>
/// <param name="Columns">Cells across.</param>
/// <param name="Rows">Cells down.</param>
/// <param name="Upper">Upper pixel of each cell, [column, row].</param>
/// <param name="Lower">Lower pixel of each cell, [column, row].</param>
public sealed record HalfBlockFrame(int Left, int Columns, int Rows, Rgb[,] Upper, Rgb[,] Lower)
{
    /// <summary>The glyph every cell is drawn with.</summary>
    public const char Glyph = '▀';

    /// <summary>
    /// Fits <paramref name="image"/> into <paramref name="panelColumns"/> × <paramref name="panelRows"/> cells,
    /// keeping its aspect ratio; each output pixel is the mean of the source pixels it covers (a box filter, so a
    /// large picture shrunk to a few dozen cells does not alias into noise). Null when the panel has no room.
    /// </summary>
    public static HalfBlockFrame? Fit(RgbImage image, int panelColumns, int panelRows)
    {
        if (panelColumns <= 0 || panelRows <= 0) return null;
        double scale = Math.Min((double)panelColumns / image.Width, 2.0 * panelRows / image.Height);
        int columns = Math.Clamp((int)Math.Round(image.Width * scale), 1, panelColumns);
        int rows = Math.Clamp((int)Math.Round(image.Height * scale / 2), 1, panelRows);
        int pixelRows = rows * 2;
        var upper = new Rgb[columns, rows];
        var lower = new Rgb[columns, rows];
        for (int y = 0; y < pixelRows; y++)
        {
            int y0 = (int)((long)y * image.Height / pixelRows);
            int y1 = Math.Max(y0 + 1, (int)((long)(y + 1) * image.Height / pixelRows));
            for (int x = 0; x < columns; x++)
            {
                int x0 = (int)((long)x * image.Width / columns);
                int x1 = Math.Max(x0 + 1, (int)((long)(x + 1) * image.Width / columns));
                var mean = Mean(image, x0, x1, y0, y1);
                if (y % 2 == 0) upper[x, y / 2] = mean;
                else lower[x, y / 2] = mean;
            }
        }
        return new HalfBlockFrame((panelColumns - columns) / 2, columns, rows, upper, lower);
    }

    private static Rgb Mean(RgbImage image, int x0, int x1, int y0, int y1)
    {
        long r = 0, g = 0, b = 0;
        var p = image.Pixels;
        for (int y = y0; y < y1; y++)
        {
            int i = (y * image.Width + x0) * 3;
            for (int x = x0; x < x1; x++, i += 3)
            {
                r += p[i];
                g += p[i + 1];
                b += p[i + 2];
            }
        }
        long n = (long)(x1 - x0) * (y1 - y0);
        // Rounded to nearest, so a uniform area keeps its exact colour.
        return new Rgb((byte)((r + n / 2) / n), (byte)((g + n / 2) / n), (byte)((b + n / 2) / n));
    }
}
