using SkiaSharp;

namespace LoraBridge.Tui;

/// <summary>One colour (8 bits per channel).</summary>
/// <param name="R">Red.</param>
/// <param name="G">Green.</param>
/// <param name="B">Blue.</param>
public readonly record struct Rgb(byte R, byte G, byte B);

/// <summary>
/// An RGB picture in memory (row-major, 3 bytes per pixel): a PNG read from disk or a live preview the sampler sent.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Wraps <paramref name="pixels"/> (RGB, row after row; not copied).</summary>
    /// <exception cref="ArgumentException">The buffer does not hold <paramref name="width"/> × <paramref name="height"/> pixels.</exception>
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size must be positive, got {width}x{height}");
        if (pixels.Length != width * height * 3)
            throw new ArgumentException($"a {width}x{height} RGB image needs {width * height * 3} bytes, got {pixels.Length}");
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }
    /// <summary>RGB bytes, row after row.</summary>
    public byte[] Pixels { get; }

    /// <summary>The pixel at (<paramref name="x"/>, <paramref name="y"/>).</summary>
    public Rgb this[int x, int y]
    {
        get
        {
            var i = (y * Width + x) * 3;
            return new Rgb(Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
    }

    /// <summary>Decodes an image file (PNG, JPEG, WebP…); transparent pixels are composed over black.</summary>
    /// <exception cref="InvalidDataException">The file is not an image SkiaSharp can decode (its path is named).</exception>
    public static RgbImage Load(string path)
    {
        using var stream = File.OpenRead(path);
        using var bitmap = SKBitmap.Decode(stream) ?? throw new InvalidDataException($"{path}: not a readable image");
        return From(bitmap);
    }

    private static RgbImage From(SKBitmap bitmap)
    {
        var colors = bitmap.Pixels;
        var rgb = new byte[bitmap.Width * bitmap.Height * 3];
        for (int i = 0; i < colors.Length; i++)
        {
            var c = colors[i];
            // SKBitmap.Pixels are unpremultiplied: scale by alpha to compose over the (black) panel.
            rgb[i * 3] = (byte)(c.Red * c.Alpha / 255);
            rgb[i * 3 + 1] = (byte)(c.Green * c.Alpha / 255);
            rgb[i * 3 + 2] = (byte)(c.Blue * c.Alpha / 255);
        }
        return new RgbImage(bitmap.Width, bitmap.Height, rgb);
    }
}
