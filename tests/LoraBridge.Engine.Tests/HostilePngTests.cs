using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using LoraBridge.Engine;
using Xunit.Abstractions;

namespace LoraBridge.Engine.Tests;

/// <summary>Issue 17: compressed-text bombs, oversized text, quadratic parameter lines, escapes in what is printed.</summary>
public class HostilePngTests(ITestOutputHelper output)
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private static byte[] Chunk(string type, byte[] data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        Encoding.ASCII.GetBytes(type).CopyTo(chunk, 4);
        data.CopyTo(chunk, 8);
        return chunk;
    }

    private static byte[] Png(params byte[][] chunks) => [.. Signature, .. Chunk("IHDR", new byte[13]), .. chunks.SelectMany(c => c), .. Chunk("IEND", [])];

    /// <summary>zlib of <paramref name="count"/> zero bytes, written in pieces so the test itself stays small.</summary>
    internal static byte[] ZeroBomb(long count)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.SmallestSize))
        {
            var block = new byte[1 << 20];
            for (long left = count; left > 0; left -= block.Length) z.Write(block, 0, (int)Math.Min(left, block.Length));
        }
        return ms.ToArray();
    }

    public static TheoryData<string> CompressedTypes => ["zTXt", "iTXt"];

    [Theory]
    [MemberData(nameof(CompressedTypes))]
    public void CompressedTextBombIsRefusedNamingTheChunk(string type)
    {
        var bomb = ZeroBomb(1L << 30); // 1 GiB of zeros in about 1 MB
        Assert.True(bomb.Length < 2 << 20);
        byte[] data = type == "zTXt"
            ? [.. Encoding.Latin1.GetBytes("parameters"), 0, 0, .. bomb]
            : [.. Encoding.Latin1.GetBytes("parameters"), 0, 1, 0, 0, 0, .. bomb];
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var ex = Assert.Throws<InvalidDataException>(() => PngText.Read(Png(Chunk(type, data))));
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Contains($"{type} chunk 'parameters' at offset 33 inflates to more than the limit of {PngText.MaxTextBytes} bytes", ex.Message);
        // What the reader allocated stays near the cap (the growing buffer), nowhere near the gigabyte inside.
        Assert.True(allocated < 64L << 20, $"allocated {allocated} bytes");
    }

    [Fact]
    public void OversizedPlainTextChunkIsRefused()
    {
        var text = new byte[PngText.MaxTextBytes + 1];
        text.AsSpan().Fill((byte)'a');
        var ex = Assert.Throws<InvalidDataException>(() => PngText.Read(Png(Chunk("tEXt", [.. Encoding.Latin1.GetBytes("parameters"), 0, .. text]))));
        Assert.Contains("tEXt chunk at offset 33 is", ex.Message);
        Assert.Contains("limit", ex.Message);
    }

    [Fact]
    public void ImageDataIsSkippedNotRead()
    {
        // A large IDAT between the header and the text: the text is found, and the file is read as a stream.
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, Png(Chunk("IDAT", new byte[8 << 20]), Chunk("tEXt", [.. Encoding.Latin1.GetBytes("parameters"), 0, .. "a cat\nSteps: 4, Seed: 1, Size: 8x8"u8])));
            var before = GC.GetTotalAllocatedBytes(precise: true);
            Assert.Equal("a cat\nSteps: 4, Seed: 1, Size: 8x8", PngText.Read(path)["parameters"]);
            Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 2 << 20);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    public void HugeInfotextsParseInLinearTime(int megabytes)
    {
        // The shapes that made the backtracking pattern quadratic: a long run of word characters and spaces that
        // never reaches a colon, and many short parameters.
        var words = string.Concat(Enumerable.Repeat("word ", megabytes * 200_000));
        var sw = Stopwatch.StartNew();
        var info = Infotext.Parse("a prompt\n" + words);
        var wordsTime = sw.Elapsed;
        Assert.Empty(info.Parameters);
        Assert.EndsWith("word", info.Prompt);

        var many = string.Join(", ", Enumerable.Range(0, megabytes * 80_000).Select(i => $"Key {i}: v{i}"));
        sw.Restart();
        info = Infotext.Parse("a prompt\n" + many);
        var manyTime = sw.Elapsed;
        Assert.Equal(megabytes * 80_000, info.Parameters.Count);
        Assert.Equal("v7", info["Key 7"]);
        // Reported, not asserted (the project does not put wall-clock limits in tests): see the notes for figures.
        output.WriteLine($"{megabytes} MB: one long run {wordsTime.TotalMilliseconds:0} ms, {info.Parameters.Count} parameters {manyTime.TotalMilliseconds:0} ms");
    }

    [Fact]
    public void LinearScannerFindsWhatA1111sPatternFinds()
    {
        // Differential check against the pattern itself on 20,000 random lines over the characters that matter.
        var pattern = new System.Text.RegularExpressions.Regex(@"\s*(\w[\w \-/]+):\s*(""(?:\\.|[^\\""])+""|[^,]*)(?:,|$)");
        const string alphabet = "ab  ::,,\"\\-/\té1_\u00a0.";
        var rng = new Random(17);
        for (int t = 0; t < 20_000; t++)
        {
            var chars = new char[rng.Next(0, 40)];
            for (int i = 0; i < chars.Length; i++) chars[i] = alphabet[rng.Next(alphabet.Length)];
            var line = new string(chars);
            var text = "prompt\n" + line;
            var lastLine = text.Trim().Split('\n')[^1]; // Parse trims the whole text first, as A1111 does
            var expected = pattern.Matches(lastLine).Select(m => (m.Groups[1].Value.Trim(), m.Groups[2].Value)).ToList();
            var got = Infotext.Parse(text).Parameters.Select(kv => (kv.Key, kv.Value)).ToList();
            if (expected.Count < 3)
            {
                Assert.Empty(got);
                continue;
            }
            var want = expected.Select(e => (e.Item1, Unquote(e.Item2))).ToList();
            Assert.True(want.SequenceEqual(got), $"line [{line}] want {string.Join("|", want)} got {string.Join("|", got)}");
        }
    }

    private static string Unquote(string value)
    {
        if (value.Length < 2 || value[0] != '"' || value[^1] != '"') return value;
        try { return System.Text.Json.JsonSerializer.Deserialize<string>(value) ?? value; }
        catch (System.Text.Json.JsonException) { return value; }
    }

    [Fact]
    public void EscapeNeutralisesTerminalControls()
    {
        Assert.Equal("plain ✓ text", TerminalText.Escape("plain ✓ text"));
        Assert.Equal("\\u001b]52;c;aGk=\\u0007 \\u001b[2J x\\u009by", TerminalText.Escape("\u001b]52;c;aGk=\u0007 \u001b[2J x\u009by"));
        Assert.Equal("a\\u000ab", TerminalText.Escape("a\nb"));
        Assert.Equal("a\nb\tc\\u000d", TerminalText.Escape("a\nb\tc\r", keepNewlines: true));
        Assert.Equal("\\u202eevil", TerminalText.Escape("\u202eevil"));
    }
}
