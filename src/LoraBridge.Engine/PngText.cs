using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace LoraBridge.Engine;

/// <summary>
/// Reads the text chunks (tEXt, zTXt, iTXt) of a PNG file, where A1111 and LoraBridge keep the <c>parameters</c>
/// infotext. Hand-written because SkiaSharp decodes pixels but does not expose text chunks; the format is small.
/// </summary>
public static class PngText
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Every text chunk as keyword → text, in file order (the first of a repeated keyword wins).</summary>
    /// <exception cref="InvalidDataException">Not a PNG, or a truncated or malformed chunk; the message names the file and offset.</exception>
    public static IReadOnlyDictionary<string, string> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        try
        {
            return Read(bytes);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }

    /// <summary>Text chunks of PNG <paramref name="png"/>.</summary>
    public static IReadOnlyDictionary<string, string> Read(ReadOnlySpan<byte> png)
    {
        if (png.Length < Signature.Length || !png[..Signature.Length].SequenceEqual(Signature))
            throw new InvalidDataException("not a PNG file (bad signature)");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        int pos = Signature.Length;
        while (pos + 12 <= png.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png[pos..]);
            var type = Encoding.ASCII.GetString(png.Slice(pos + 4, 4));
            if (length > int.MaxValue || pos + 12 + (long)length > png.Length)
                throw new InvalidDataException($"chunk '{type}' at offset {pos} runs past the end of the file");
            var data = png.Slice(pos + 8, (int)length);
            switch (type)
            {
                case "tEXt": Add(result, ParseText(data, pos)); break;
                case "zTXt": Add(result, ParseCompressedText(data, pos)); break;
                case "iTXt": Add(result, ParseInternationalText(data, pos)); break;
                case "IEND": return result;
            }
            pos += 12 + (int)length;
        }
        throw new InvalidDataException("the file ends before the IEND chunk (truncated)");
    }

    private static void Add(Dictionary<string, string> result, (string Key, string Text) entry) => result.TryAdd(entry.Key, entry.Text);

    private static int Nul(ReadOnlySpan<byte> data, int from, int offset, string type)
    {
        int i = data[from..].IndexOf((byte)0);
        if (i < 0) throw new InvalidDataException($"{type} chunk at offset {offset} has no keyword terminator");
        return from + i;
    }

    private static (string, string) ParseText(ReadOnlySpan<byte> data, int offset)
    {
        int k = Nul(data, 0, offset, "tEXt");
        return (Encoding.Latin1.GetString(data[..k]), Encoding.Latin1.GetString(data[(k + 1)..]));
    }

    private static (string, string) ParseCompressedText(ReadOnlySpan<byte> data, int offset)
    {
        int k = Nul(data, 0, offset, "zTXt");
        if (k + 2 > data.Length) throw new InvalidDataException($"zTXt chunk at offset {offset} is truncated");
        return (Encoding.Latin1.GetString(data[..k]), Encoding.Latin1.GetString(Inflate(data[(k + 2)..], offset)));
    }

    private static (string, string) ParseInternationalText(ReadOnlySpan<byte> data, int offset)
    {
        int k = Nul(data, 0, offset, "iTXt");
        if (k + 3 > data.Length) throw new InvalidDataException($"iTXt chunk at offset {offset} is truncated");
        bool compressed = data[k + 1] != 0;
        int language = Nul(data, k + 3, offset, "iTXt");
        int translated = Nul(data, language + 1, offset, "iTXt");
        var text = data[(translated + 1)..];
        var utf8 = compressed ? Inflate(text, offset) : text.ToArray();
        return (Encoding.Latin1.GetString(data[..k]), Encoding.UTF8.GetString(utf8));
    }

    private static byte[] Inflate(ReadOnlySpan<byte> compressed, int offset)
    {
        try
        {
            using var input = new MemoryStream(compressed.ToArray());
            using var z = new ZLibStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream();
            z.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException)
        {
            throw new InvalidDataException($"compressed text chunk at offset {offset} is corrupt");
        }
    }
}
