using System.Text.Json;
using LoraBridge.Prompting;

namespace LoraBridge.Prompting.Tests;

public class CliTests
{
    [SharedFact]
    public void JsonlWritesConformanceShapedLines()
    {
        var lines = ConformanceTests.RecordLines().Take(50).ToList();
        var input = string.Join("\n", lines.Select(l =>
        {
            using var d = JsonDocument.Parse(l);
            var r = d.RootElement;
            return JsonSerializer.Serialize(new
            {
                prompt = r.GetProperty("prompt").GetString(),
                steps = r.GetProperty("steps").GetInt32(),
                hires_steps = r.GetProperty("hires_steps").ValueKind == JsonValueKind.Null ? (int?)null : r.GetProperty("hires_steps").GetInt32(),
            });
        }));
        var output = new StringWriter();
        Assert.Equal(0, PromptCli.PlanJsonl(new StringReader(input), output));
        var outLines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(lines.Count, outLines.Length);
        for (int i = 0; i < lines.Count; i++)
        {
            using var e = JsonDocument.Parse(lines[i]);
            using var a = JsonDocument.Parse(outLines[i]);
            Assert.Empty(ConformanceTests.Compare(e.RootElement, a.RootElement));
            var expectedKeys = e.RootElement.EnumerateObject().Select(p => p.Name).Where(n => n is not ("id" or "prompt_id" or "category"));
            Assert.Equal(expectedKeys, a.RootElement.EnumerateObject().Select(p => p.Name));
        }
    }

    [Fact]
    public void JsonlReportsBadLinesWithLineNumbers()
    {
        var output = new StringWriter();
        int rc = PromptCli.PlanJsonl(new StringReader("{\"prompt\":\"a\",\"steps\":5}\nnot json\n{\"prompt\":\"a\",\"steps\":0}\n"), output);
        Assert.Equal(2, rc);
        var outLines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, outLines.Length);
        Assert.Contains("stdin line 2", outLines[1]);
        Assert.Contains("\\u0022steps\\u0022", outLines[2]);
    }

    [Fact]
    public void LoneSurrogatesNeitherCrashInputNorOutput()
    {
        var output = new StringWriter();
        Assert.Equal(2, PromptCli.PlanJsonl(new StringReader("{\"prompt\":\"a \\ud800 b\",\"steps\":3}"), output));
        Assert.Contains("stdin line 1", output.ToString());
        var line = A1111Result.Compute("a \ud800 (b)", 3, null).ToJsonLine();
        using var doc = JsonDocument.Parse(line);
        Assert.Equal(3, doc.RootElement.GetProperty("steps").GetInt32());
        _ = PromptCli.PlanJson(PromptPlan.Create("x \udc00 <lora:\ud800:1>", 3));
    }

    [Fact]
    public void TableShowsTextsAndLoraMultipliers()
    {
        var output = new StringWriter();
        Assert.Equal(0, PromptCli.Plan("a [cat:dog:5] <lora:foo:0.8>", 10, null, json: false, output));
        var text = output.ToString();
        Assert.Contains("0-5   | \"a cat\" | 0.8/0.8", text);
        Assert.Contains("6-9   | \"a dog\" | 0.8/0.8", text);
    }

    [Fact]
    public void JsonPlanHasPassesPartsAndChanges()
    {
        var output = new StringWriter();
        Assert.Equal(1, PromptCli.Plan("[<lora:a:1>::5] (x:1.2.3)", 10, 4, json: true, output));
        using var doc = JsonDocument.Parse(output.ToString());
        var root = doc.RootElement;
        Assert.True(root.GetProperty("extended").GetBoolean());
        Assert.Equal(2, root.GetProperty("passes").GetArrayLength());
        var changes = root.GetProperty("passes")[0].GetProperty("changes");
        Assert.Equal([0, 6], changes.EnumerateArray().Select(c => c.GetProperty("step").GetInt32()));
        Assert.Equal("ValueError", root.GetProperty("errors")[0].GetProperty("kind").GetString());
    }
}
