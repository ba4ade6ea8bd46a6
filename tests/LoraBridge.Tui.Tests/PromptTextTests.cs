using LoraBridge.Prompting;

namespace LoraBridge.Tui.Tests;

public class PromptTextTests
{
    [Theory]
    [InlineData("a cat", 5, "a cat <lora:x:1>", 16)]     // after a word: space before
    [InlineData("a cat", 0, "<lora:x:1> a cat", 10)]     // before a word: space after, cursor stays on the tag's end
    [InlineData("a cat", 2, "a <lora:x:1> cat", 12)]     // after a space: no extra space before
    [InlineData("a, b", 1, "a <lora:x:1>, b", 12)]       // before a comma: no space after
    [InlineData("", 0, "<lora:x:1>", 10)]
    [InlineData("ab", 99, "ab <lora:x:1>", 13)]          // cursor past the end is clamped
    public void InsertLoraAtCursor(string text, int cursor, string expected, int expectedCursor)
    {
        var (updated, at) = PromptText.InsertLora(text, cursor, "x");
        Assert.Equal(expected, updated);
        Assert.Equal(expectedCursor, at);
        Assert.Equal("<lora:x:1>", updated[(at - 10)..at]);
    }

    [Fact]
    public void InsertLoraWritesTheWeightInvariantly()
    {
        Assert.Equal("<lora:demo_style:0.75>", PromptText.InsertLora("", 0, "demo_style", 0.75).Text);
    }

    [Fact]
    public void OffsetsAndLineColumnsRoundTrip()
    {
        const string text = "first line\nsecond\n\nlast";
        for (int i = 0; i <= text.Length; i++)
        {
            var (line, column) = PromptText.LineColumn(text, i);
            Assert.Equal(i, PromptText.Offset(text, line, column));
        }
        Assert.Equal((1, 3), PromptText.LineColumn(text, 14));
        Assert.Equal(text.Length, PromptText.Offset(text, 9, 0));  // past the last line
        Assert.Equal(17, PromptText.Offset(text, 1, 99));          // column clamped to the line's end
    }

    [Fact]
    public void ErrorIsDescribedWithLineColumnAndCaret()
    {
        const string prompt = "a cat\n(b:1.2.3)";
        var plan = PromptPlan.Create(prompt, 10);
        var error = Assert.Single(plan.Errors);
        var lines = PromptText.DescribeError(prompt, error).Split('\n');
        Assert.StartsWith("prompt line 2, column ", lines[0]);
        Assert.Equal("  (b:1.2.3)", lines[1]);
        var caret = lines[2].IndexOf('^', StringComparison.Ordinal) - 2;
        Assert.Equal(PromptText.LineColumn(prompt, error.Position).Column, caret);
        Assert.Contains($"column {caret + 1}:", lines[0]);
    }

    [Fact]
    public void PlanRowsFollowScheduleAndLoraTracks()
    {
        var text = PromptText.RenderPlan(PromptPlan.Create("a [b:c:0.5] <lora:s:0.8>", 10));
        var lines = text.TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Equal("base: 10 steps, 1 part, s", lines[0]);
        Assert.Equal(3, lines.Length);
        // A1111: int(0.5 * 10) = 5 is the last 0-based call of the first text.
        Assert.Matches(@"^  0-5\s+""a b""\s+s 0\.8/0\.8$", lines[1]);
        Assert.Matches(@"^  6-9\s+""a c""\s+s 0\.8/0\.8$", lines[2]);
    }

    [Fact]
    public void PlanShowsErrorsAndWrapsLongTexts()
    {
        var text = PromptText.RenderPlan(PromptPlan.Create("abc (d:1.2.3) " + new string('z', 80), 4), textWidth: 20);
        Assert.StartsWith("error: prompt line 1, column 7:", text);
        Assert.Contains("\n  abc (d:1.2.3) zzz", text);
        var lines = text.Split('\n');
        var row = Array.FindIndex(lines, l => l.StartsWith("  0-3", StringComparison.Ordinal));
        Assert.Equal("  0-3  \"abc (d:1.2.3)", lines[row]);
        // The rest of the text continues on the next lines under the text column, nothing cut.
        Assert.Equal("       " + new string('z', 20), lines[row + 1]);
        Assert.Equal(new string('z', 80) + "\"", string.Concat(lines[(row + 1)..].Select(l => l.Trim())));
    }

    [Fact]
    public void NetworkArgumentErrorsAreMarkedAsNonFatalInA1111()
    {
        var text = PromptText.RenderPlan(PromptPlan.Create("<lora:a:0@0,1@0.5>", 10, extensions: false));
        Assert.StartsWith("error (A1111 would skip the network): prompt line 1, column 1:", text);
    }
}
