using LoraBridge.Engine;

namespace LoraBridge.Engine.Tests;

public class InfotextTests
{
    // Written by A1111 v1.10.1 for a txt2img run (format of create_infotext).
    private const string A1111Text =
        "a photo of a cat, <lora:style:0.8>\nNegative prompt: blurry, (bad hands:1.2)\n" +
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x512, " +
        "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: \"style: 0123456789ab\", Version: v1.10.1";

    [Fact]
    public void ParsesA1111Text()
    {
        var info = Infotext.Parse(A1111Text);
        Assert.Equal("a photo of a cat, <lora:style:0.8>", info.Prompt);
        Assert.Equal("blurry, (bad hands:1.2)", info.NegativePrompt);
        Assert.Equal("20", info["Steps"]);
        Assert.Equal("DPM++ 2M", info["Sampler"]);
        Assert.Equal("style: 0123456789ab", info["Lora hashes"]);
        Assert.Equal("v1.10.1", info["Version"]);
        Assert.Equal(10, info.Parameters.Count);
    }

    [Fact]
    public void FormatRoundTripsToTheSameText()
    {
        Assert.Equal(A1111Text, Infotext.Parse(A1111Text).Format());
    }

    [Fact]
    public void QuotesValuesLikeA1111()
    {
        Assert.Equal("plain", Infotext.Quote("plain"));
        Assert.Equal("\"a: b, c\"", Infotext.Quote("a: b, c"));
        Assert.Equal("\"x\\ny\"", Infotext.Quote("x\ny"));
    }

    [Fact]
    public void MultiLinePromptsAndNoNegative()
    {
        var info = new Infotext("line one\nline two", "", [new("Steps", "4"), new("Seed", "1"), new("Size", "64x64")]);
        var parsed = Infotext.Parse(info.Format());
        Assert.Equal(info.Prompt, parsed.Prompt);
        Assert.Equal("", parsed.NegativePrompt);
        Assert.Equal(info.Parameters, parsed.Parameters);
    }

    [Fact]
    public void TextWithoutParameterLineIsAllPrompt()
    {
        var parsed = Infotext.Parse("just a prompt: with colon");
        Assert.Equal("just a prompt: with colon", parsed.Prompt);
        Assert.Empty(parsed.Parameters);
    }

    [Theory]
    // Expected values are Python's json.dumps(value, ensure_ascii=False), what A1111's quote() writes.
    [InlineData("a: b, c", "\"a: b, c\"")]
    [InlineData("emoji \U0001F98A: ok", "\"emoji \U0001F98A: ok\"")]
    [InlineData("quote \" and \\ back", "\"quote \\\" and \\\\ back\"")]
    [InlineData("ctl \u0001\u001f\u007f", "\"ctl \\u0001\\u001f\u007f\"")]
    [InlineData("tab\there, x", "\"tab\\there, x\"")]
    public void JsonStringsMatchPython(string value, string expected) => Assert.Equal(expected, Infotext.PythonJsonString(value));

    [Theory]
    [InlineData(7.0, "7")]
    [InlineData(7.5, "7.5")]
    [InlineData(0.1, "0.1")]
    public void NumbersFormatLikePython(double value, string expected) => Assert.Equal(expected, Infotext.FormatNumber(value));
}

public class OutputNamingTests
{
    [Fact]
    public void NumbersFollowTheLargestExistingPrefixAndNeverOverwrite()
    {
        var dir = Directory.CreateTempSubdirectory("lb-names").FullName;
        try
        {
            Assert.Equal(0, OutputNaming.NextSequenceNumber(dir));
            var first = OutputNaming.WriteNext(dir, 42, [1, 2, 3]);
            Assert.Equal("00000-42.png", Path.GetFileName(first));
            File.WriteAllText(Path.Combine(dir, "00007-1.png"), "user file");
            File.WriteAllText(Path.Combine(dir, "notes.txt"), "ignored");
            var second = OutputNaming.WriteNext(dir, 42, [4]);
            Assert.Equal("00008-42.png", Path.GetFileName(second));
            Assert.Equal("user file", File.ReadAllText(Path.Combine(dir, "00007-1.png")));
            Assert.Equal([1, 2, 3], File.ReadAllBytes(first));
            Assert.DoesNotContain(Directory.GetFiles(dir), f => f.EndsWith(".tmp", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void MissingFolderStartsAtZero() => Assert.Equal(0, OutputNaming.NextSequenceNumber("/nonexistent/lorabridge"));
}
