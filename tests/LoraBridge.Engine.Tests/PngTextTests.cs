using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using LoraBridge.Engine;

namespace LoraBridge.Engine.Tests;

public class PngTextTests
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type).CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        return chunk; // CRC left zero: the reader does not need it
    }

    private static byte[] Png(params byte[][] chunks) => [.. Signature, .. Chunk("IHDR", new byte[13]), .. chunks.SelectMany(c => c), .. Chunk("IEND", [])];

    private static byte[] Zlib(string text)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal)) z.Write(Encoding.UTF8.GetBytes(text));
        return ms.ToArray();
    }

    [Fact]
    public void ReadsTextCompressedAndInternationalChunks()
    {
        var png = Png(
            Chunk("tEXt", [.. Encoding.Latin1.GetBytes("parameters"), 0, .. Encoding.Latin1.GetBytes("a cat\nSteps: 4")]),
            Chunk("zTXt", [.. Encoding.Latin1.GetBytes("comment"), 0, 0, .. Zlib("squeezed")]),
            Chunk("iTXt", [.. Encoding.Latin1.GetBytes("unicode"), 0, 1, 0, 0, 0, .. Zlib("чай ☕")]),
            Chunk("iTXt", [.. Encoding.Latin1.GetBytes("plain"), 0, 0, 0, .. Encoding.ASCII.GetBytes("en"), 0, 0, .. Encoding.UTF8.GetBytes("ünï")]));
        var text = PngText.Read(png);
        Assert.Equal("a cat\nSteps: 4", text["parameters"]);
        Assert.Equal("squeezed", text["comment"]);
        Assert.Equal("чай ☕", text["unicode"]);
        Assert.Equal("ünï", text["plain"]);
    }

    [Fact]
    public void RejectsNonPngAndTruncatedFilesWithTheirPath()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, Encoding.ASCII.GetBytes("GIF89a"));
            var ex = Assert.Throws<InvalidDataException>(() => PngText.Read(path));
            Assert.Contains(path, ex.Message);
            Assert.Contains("signature", ex.Message);

            var png = Png(Chunk("tEXt", [.. Encoding.Latin1.GetBytes("parameters"), 0, 65]));
            File.WriteAllBytes(path, png[..^20]);
            ex = Assert.Throws<InvalidDataException>(() => PngText.Read(path));
            Assert.Contains(path, ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
