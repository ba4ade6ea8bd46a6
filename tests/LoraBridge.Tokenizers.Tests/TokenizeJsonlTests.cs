using System.Text.Json;

namespace LoraBridge.Tokenizers.Tests;

public class TokenizeJsonlTests
{
    [SharedFact]
    public void WritesTextAndIdsPerLine()
    {
        var input = new StringReader("{\"text\": \"a photo of a cat\"}\n\n{\"text\": \"caf\\u00e9 \\\"x\\\"\", \"other\": 1}\n");
        var output = new StringWriter();
        Assert.Equal(2, TokenizeJsonl.Run(input, output, ClipData.Clip));
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal("{\"text\":\"a photo of a cat\",\"ids\":[320,1125,539,320,2368]}", lines[0].TrimEnd('\r'));
        using var doc = JsonDocument.Parse(lines[1]);
        Assert.Equal("café \"x\"", doc.RootElement.GetProperty("text").GetString());
        Assert.Equal(ClipData.Clip.Encode("café \"x\""),
            doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray());
    }

    [SharedFact]
    public void ReproducesTheConformanceCorpus()
    {
        var records = ClipData.TokenRecords();
        var input = new StringReader(string.Join("\n", records.Select(r => JsonSerializer.Serialize(new { text = r.Text }))));
        var output = new StringWriter();
        TokenizeJsonl.Run(input, output, ClipData.Clip);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(records.Count, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            Assert.Equal(records[i].Text, doc.RootElement.GetProperty("text").GetString());
            Assert.Equal(records[i].Ids, doc.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray());
        }
    }

    [SharedTheory]
    [InlineData("{\"text\": \"ok\"}\nnot json", "line 2: invalid JSON")]
    [InlineData("{\"txt\": \"x\"}", "line 1: missing string field \"text\"")]
    [InlineData("{\"text\": 5}", "line 1: missing string field \"text\"")]
    [InlineData("[1]", "line 1: expected a JSON object")]
    public void BadLinesNameTheLine(string input, string message)
    {
        var output = new StringWriter();
        var e = Assert.Throws<InvalidDataException>(() => TokenizeJsonl.Run(new StringReader(input), output, ClipData.Clip));
        Assert.StartsWith(message, e.Message);
    }
}
