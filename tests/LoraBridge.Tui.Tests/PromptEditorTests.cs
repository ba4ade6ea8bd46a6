using LoraBridge.Prompting;
using LoraBridge.Tokenizers;

namespace LoraBridge.Tui.Tests;

// Prompt editor v2: caret at the prompt column, wrapped messages and plan rows, A1111's token counter.
public class PromptEditorTests
{
    private static int Caret(string prompt, int steps = 10)
    {
        var plan = PromptPlan.Create(prompt, steps);
        var error = plan.Errors[0];
        var lines = PromptText.DescribeError(plan.Prompt, PromptCaret.InPrompt(plan, error)).Split('\n');
        return lines[2].IndexOf('^', StringComparison.Ordinal) - 2;
    }

    // Where the planner reports the error for the construct alone at the start of a prompt.
    private static int Alone(string construct) => PromptPlan.Create(construct, 10).Errors[0].Position;

    [Theory]
    [InlineData("[aa:b:0.5] ", "(c:1.2.3)")]              // emphasis after an edit: the scheduled text is shorter
    [InlineData("[aa:b:0.5] <lora:x:1> ", "(c:1.2.3)")]    // and a LoRA tag the scheduler never sees
    [InlineData("x AND [long text:y:3] ", "(c:1.2.3)")]   // second AND part
    public void EmphasisErrorCaretIsAtThePromptColumn(string before, string construct)
    {
        var prompt = before + construct;
        var raw = PromptPlan.Create(prompt, 10).Errors[0];
        var expected = before.Length + Alone(construct);
        Assert.NotEqual(expected, raw.Position);   // the planner's offset is in the scheduled text
        Assert.Equal(expected, Caret(prompt));
    }

    [Theory]
    [InlineData("a cat <lora:a:0@x,1@0.5>", true)]     // keyframe syntax (extension)
    [InlineData("a cat <lora:a:1@0,0@1>", true)]
    [InlineData("a cat <lora:a:0@0,1@0.5>", false)]    // LoRA argument A1111 rejects
    [InlineData("a cat <lora:a:b:c:x>", false)]
    public void KeyframeAndLoraArgumentErrorsPointIntoTheTag(string prompt, bool extensions)
    {
        var plan = PromptPlan.Create(prompt, 10, extensions: extensions);
        if (plan.Errors.Count == 0) return;   // the syntax was accepted: nothing to point at
        var offset = PromptCaret.PromptOffset(plan, plan.Errors[0]);
        Assert.Equal(plan.Errors[0].Position, offset);   // already a prompt offset: kept
        Assert.InRange(offset, prompt.IndexOf('<', StringComparison.Ordinal), prompt.Length - 1);
    }

    [Fact]
    public void AlignmentPrefersThePlaceAnchoredByTheRestOfTheText()
    {
        // "(" appears twice before the emphasis; the characters after the error anchor it to the last one.
        Assert.True(PromptCaret.TryAlign("[(:x:0.5] y (z:1.2.3)", "x y (z:1.2.3)", 4, out var offset));
        Assert.Equal(12, offset);
        Assert.False(PromptCaret.TryAlign("abc", "abd", 2, out _));
    }

    [Fact]
    public void LongErrorsWrapWithNothingCut()
    {
        var prompt = "a photo of a lighthouse at dusk, " + "[p:q:0.5] " + "(storm clouds:1.2.3)";
        var plan = PromptPlan.Create(prompt, 10);
        var error = PromptCaret.InPrompt(plan, plan.Errors[0]);
        var text = PromptText.DescribeError(prompt, error, width: 30);
        var lines = text.Split('\n');
        Assert.All(lines, l => Assert.True(l.Length <= 30, $"'{l}' is wider than 30"));
        var joined = string.Join(" ", lines[..^2].Select(l => l.Trim()));
        Assert.Contains(error.Message.Split(' ')[^1], joined);   // the message's last word is there
        Assert.Equal(string.Join(" ", error.Message.Split(' ', StringSplitOptions.RemoveEmptyEntries)),
            string.Join(" ", joined[(joined.IndexOf(": ", StringComparison.Ordinal) + 2)..].Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        // The caret still sits under the error's character in the shown window of the line.
        var caret = lines[^1].IndexOf('^', StringComparison.Ordinal);
        var window = lines[^2][2..];
        var column = PromptText.LineColumn(prompt, error.Position).Column;
        Assert.Equal(prompt[column], window[caret - 2]);
    }

    [Fact]
    public void PlanRowsWrapSoLateDifferencesShow()
    {
        var common = string.Join(" ", Enumerable.Repeat("word", 20));
        var text = PromptText.RenderPlan(PromptPlan.Create(common + " [early:late:0.5]", 10), textWidth: 30);
        var lines = text.TrimEnd().Split('\n');
        Assert.All(lines, l => Assert.True(l.Length <= 2 + 3 + 2 + 30, $"'{l}' too wide"));
        Assert.Contains(lines, l => l.Contains("early\"", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("late\"", StringComparison.Ordinal));
        Assert.DoesNotContain("...", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a b c d", 30, new[] { "a b c d" })]
    [InlineData("aaaa bbbb cccc", 9, new[] { "aaaa bbbb", "  cccc" })]
    [InlineData("abcdefghij", 4, new[] { "abcd", "  ef", "  gh", "  ij" })]
    public void WrapSplitsAtSpacesThenHard(string text, int width, string[] expected) =>
        Assert.Equal(expected, PromptText.Wrap(text, width, "  "));

    private static PromptChunker? Chunker() =>
        SharedData.IsAvailable ? new PromptChunker(ClipTokenizer.FromDirectory(SharedData.ClipDir)) : null;

    [SharedFact]
    public void TokenCounterCountsAsA1111()
    {
        var chunker = Chunker()!;
        Assert.Equal("2/75", TokenCounter.Count(chunker, PromptPlan.Create("a cat", 20)).ToString());
        // Tags are not counted; the longest scheduled text is.
        Assert.Equal("3/75", TokenCounter.Count(chunker, PromptPlan.Create("a <lora:x:1> [cat:black cat:0.5]", 20)).ToString());
        var long80 = string.Join(" ", Enumerable.Repeat("cat", 80));
        Assert.Equal("80/150 (75+5)", TokenCounter.Count(chunker, PromptPlan.Create(long80, 20)).ToString());
    }

    [SharedFact]
    public void ViewModelShowsTheCounterOnceTheTokenizerIsKnown()
    {
        var vm = new GeneratorViewModel("/tmp/out") { Prompt = "a cat" };
        Assert.Equal("?/75", vm.TokenText);
        vm.Chunker = Chunker();
        Assert.Equal("2/75", vm.TokenText);
    }
}
