using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace LoraBridge.Engine;

/// <summary>
/// Reads the text chunks (tEXt, zTXt, iTXt) of a PNG file, where A1111 and LoraBridge keep the <c>parameters</c>
/// infotext. Hand-written because SkiaSharp decodes pixels but does not expose text chunks; the format is small.
/// A PNG from anywhere is bounded: image data is skipped without being read, one text chunk may hold at most
/// <see cref="MaxTextBytes"/> (compressed ones are inflated only that far) and all text together
/// <see cref="MaxTotalTextBytes"/>; beyond that the error names the chunk.
/// </summary>
public static class PngText
{
    /// <summary>Most bytes one text chunk may hold, after inflating. A1111's infotexts are a few kilobytes.</summary>
    public const int MaxTextBytes = 4 << 20;

    /// <summary>Most bytes all text chunks of one file may hold together, after inflating.</summary>
    public const int MaxTotalTextBytes = 16 << 20;

    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Every text chunk as keyword → text, in file order (the first of a repeated keyword wins).</summary>
    /// <exception cref="InvalidDataException">Not a PNG, a truncated or malformed chunk, or text past the limits; the message names the file, chunk and offset.</exception>
    public static IReadOnlyDictionary<string, string> Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return Read(stream);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: the file ends inside a chunk (truncated)");
        }
    }

    /// <summary>Text chunks of PNG <paramref name="png"/>.</summary>
    public static IReadOnlyDictionary<string, string> Read(ReadOnlySpan<byte> png)
    {
        using var stream = new MemoryStream(png.ToArray(), writable: false);
        try
        {
            return Read(stream);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException("the file ends inside a chunk (truncated)");
        }
    }

    private static IReadOnlyDictionary<string, string> Read(Stream png)
    {
        Span<byte> head = stackalloc byte[8];
        if (png.ReadAtLeast(head, 8, throwOnEndOfStream: false) < 8 || !head.SequenceEqual(Signature))
            throw new InvalidDataException("not a PNG file (bad signature)");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        long length = png.Length;
        long pos = Signature.Length;
        while (pos + 12 <= length)
        {
            png.Position = pos;
            png.ReadExactly(head);
            uint size = BinaryPrimitives.ReadUInt32BigEndian(head);
            var type = Encoding.ASCII.GetString(head[4..]);
            if (pos + 12 + (long)size > length)
                throw new InvalidDataException($"chunk '{type}' at offset {pos} runs past the end of the file");
            if (type is "tEXt" or "zTXt" or "iTXt")
            {
                // Compressed text is at most as long as what it inflates to (plus a few bytes), so one cap serves both.
                if (size > MaxTextBytes)
                    throw new InvalidDataException($"{type} chunk at offset {pos} is {size} bytes, more than the limit of {MaxTextBytes} for PNG text");
                var data = new byte[size];
                png.ReadExactly(data);
                var (key, text) = type switch
                {
                    "tEXt" => ParseText(data, pos),
                    "zTXt" => ParseCompressedText(data, pos),
                    _ => ParseInternationalText(data, pos),
                };
                total += text.Length;
                if (total > MaxTotalTextBytes)
                    throw new InvalidDataException($"{type} chunk '{key}' at offset {pos}: the file's text chunks hold more than the limit of {MaxTotalTextBytes} bytes");
                result.TryAdd(key, text);
            }
            else if (type == "IEND")
            {
                return result;
            }
            pos += 12 + (long)size;
        }
        throw new InvalidDataException("the file ends before the IEND chunk (truncated)");
    }

    private static int Nul(ReadOnlySpan<byte> data, int from, long offset, string type)
    {
        int i = data[from..].IndexOf((byte)0);
        if (i < 0) throw new InvalidDataException($"{type} chunk at offset {offset} has no keyword terminator");
        return from + i;
    }

    private static (string, string) ParseText(byte[] data, long offset)
    {
        int k = Nul(data, 0, offset, "tEXt");
        return (Encoding.Latin1.GetString(data, 0, k), Encoding.Latin1.GetString(data, k + 1, data.Length - k - 1));
    }

    private static (string, string) ParseCompressedText(byte[] data, long offset)
    {
        int k = Nul(data, 0, offset, "zTXt");
        if (k + 2 > data.Length) throw new InvalidDataException($"zTXt chunk at offset {offset} is truncated");
        var key = Encoding.Latin1.GetString(data, 0, k);
        return (key, Encoding.Latin1.GetString(Inflate(data.AsMemory(k + 2), offset, "zTXt", key)));
    }

    private static (string, string) ParseInternationalText(byte[] data, long offset)
    {
        int k = Nul(data, 0, offset, "iTXt");
        if (k + 3 > data.Length) throw new InvalidDataException($"iTXt chunk at offset {offset} is truncated");
        var key = Encoding.Latin1.GetString(data, 0, k);
        bool compressed = data[k + 1] != 0;
        int language = Nul(data, k + 3, offset, "iTXt");
        int translated = Nul(data, language + 1, offset, "iTXt");
        var text = data.AsMemory(translated + 1);
        var utf8 = compressed ? Inflate(text, offset, "iTXt", key) : text.ToArray();
        return (key, Encoding.UTF8.GetString(utf8));
    }

    private static byte[] Inflate(ReadOnlyMemory<byte> compressed, long offset, string type, string key)
    {
        try
        {
            using var input = new MemoryStream(compressed.ToArray(), writable: false);
            using var z = new ZLibStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[81920];
            int n;
            while ((n = z.Read(buffer)) > 0)
            {
                // Stop at the cap: a 1.5 MB chunk of zeros inflates to gigabytes.
                if (output.Length + n > MaxTextBytes)
                    throw new InvalidDataException($"{type} chunk '{key}' at offset {offset} inflates to more than the limit of {MaxTextBytes} bytes for PNG text");
                output.Write(buffer, 0, n);
            }
            return output.ToArray();
        }
        catch (InvalidDataException ex) when (!ex.Message.Contains("limit", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"{type} chunk '{key}' at offset {offset}: compressed text is corrupt");
        }
    }
}
