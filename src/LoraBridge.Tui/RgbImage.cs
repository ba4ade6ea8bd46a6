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

    /// <summary>Largest picture <see cref="LoadThumbnail"/> decodes (100 megapixels): a bigger "preview" is refused, not decoded.</summary>
    public const long MaxThumbnailSourcePixels = 100_000_000;

    /// <summary>
    /// Decodes an image file at most <paramref name="maxSide"/> pixels wide and high (aspect kept): JPEG and WebP are
    /// decoded directly at 1/2, 1/4 or 1/8 size where the codec can, then the result is shrunk with mipmapped
    /// (averaging) sampling, so a 4000-pixel preview costs a thumbnail's memory on the UI side. Transparent pixels are
    /// composed over black, as in <see cref="Load"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a decodable image, or larger than <see cref="MaxThumbnailSourcePixels"/> (its path is named).</exception>
    public static RgbImage LoadThumbnail(string path, int maxSide)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxSide, 1);
        using var stream = File.OpenRead(path);
        using var codec = SKCodec.Create(stream) ?? throw new InvalidDataException($"{path}: not a readable image");
        var source = codec.Info;
        if ((long)source.Width * source.Height > MaxThumbnailSourcePixels)
            throw new InvalidDataException($"{path}: {source.Width}x{source.Height} is too large for a preview (at most {MaxThumbnailSourcePixels / 1_000_000} megapixels)");
        float scale = Math.Min(1f, (float)maxSide / Math.Max(source.Width, source.Height));
        var decoded = codec.GetScaledDimensions(scale);
        var info = new SKImageInfo(decoded.Width, decoded.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        // A truncated file still yields its decoded rows (the rest stays transparent = black), as browsers show it.
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new InvalidDataException($"{path}: cannot decode the image ({result})");
        double fit = Math.Min(1.0, (double)maxSide / Math.Max(decoded.Width, decoded.Height));
        if (fit >= 1.0) return From(bitmap);
        var small = info.WithSize(Math.Max(1, (int)Math.Round(decoded.Width * fit)), Math.Max(1, (int)Math.Round(decoded.Height * fit)));
        using var resized = bitmap.Resize(small, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear))
            ?? throw new InvalidDataException($"{path}: cannot shrink the image to {small.Width}x{small.Height}");
        return From(resized);
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
