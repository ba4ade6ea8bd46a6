namespace LoraBridge.Prompting.Tests;

// `prompt plan`'s table: texts are never cut; at a terminal width the text columns wrap under their column.
public class PlanTableWidthTests
{
    private static readonly string LongPrompt =
        string.Join(", ", Enumerable.Repeat("a lighthouse on a cliff above a stormy sea", 4)) + ", [in the rain:at dawn:5] <lora:demo_style:0.8>";

    private static string Table(string prompt, int width)
    {
        var output = new StringWriter();
        Assert.Equal(0, PromptCli.Plan(prompt, 10, null, json: false, output, width));
        return output.ToString();
    }

    [Fact]
    public void WithoutAWidthEveryTextIsWhole()
    {
        var text = Table(LongPrompt, 0);
        var plain = LongPrompt.Replace(" <lora:demo_style:0.8>", "");
        Assert.Contains(plain.Replace("[in the rain:at dawn:5]", "in the rain"), text);
        Assert.Contains(plain.Replace("[in the rain:at dawn:5]", "at dawn"), text);
        Assert.DoesNotContain("...", text);
    }

    [Theory]
    [InlineData(80)]
    [InlineData(100)]
    [InlineData(60)]
    public void AtATerminalWidthRowsWrapAndTheLateDifferenceShows(int width)
    {
        var text = Table(LongPrompt, width);
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        // Table lines fit (the "prompt:" echo line above the table is the user's own text and is not a table row).
        Assert.All(lines.Where(l => l.StartsWith("  ", StringComparison.Ordinal)), l => Assert.True(l.Length <= width, $"{l.Length} > {width}: '{l}'"));
        // Each step range's text, read back from its column, is whole: the two rows differ at the end.
        var rows = Rows(lines);
        Assert.Equal(2, rows.Count);
        Assert.EndsWith("in the rain\"", rows[0].Text);
        Assert.EndsWith("at dawn\"", rows[1].Text);
        Assert.Equal("0.8/0.8", rows[0].Lora);
        Assert.DoesNotContain("...", text);
    }

    [Fact]
    public void ANarrowTableIsUnchangedByTheWidth()
    {
        Assert.Equal(Table("a [cat:dog:5] <lora:foo:0.8>", 0), Table("a [cat:dog:5] <lora:foo:0.8>", 80));
    }

    [Fact]
    public void JsonIsTheSameWhateverTheWidth()
    {
        var a = new StringWriter();
        var b = new StringWriter();
        PromptCli.Plan(LongPrompt, 10, 4, json: true, a);
        PromptCli.Plan(LongPrompt, 10, 4, json: true, b, 40);
        Assert.Equal(a.ToString(), b.ToString());
        Assert.Contains("at dawn", a.ToString());
    }

    // Joins the wrapped lines of each table row: a row starts where the steps column is not blank.
    private static List<(string Steps, string Text, string Lora)> Rows(List<string> lines)
    {
        int header = lines.FindIndex(l => l.StartsWith("  steps ", StringComparison.Ordinal));
        var rows = new List<(string, string, string)>();
        foreach (var line in lines.Skip(header + 2).Where(l => l.StartsWith("  ", StringComparison.Ordinal)))
        {
            var cells = line[2..].Split(" | ");
            if (cells[0].Trim().Length > 0) rows.Add((cells[0].Trim(), cells[1].Trim(), cells[2].Trim()));
            else
            {
                var (s, t, l) = rows[^1];
                rows[^1] = (s, t + " " + cells[1].Trim(), (l + " " + cells[2].Trim()).Trim());
            }
        }
        return rows;
    }
}
