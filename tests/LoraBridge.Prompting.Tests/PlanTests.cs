using LoraBridge.Prompting;

namespace LoraBridge.Prompting.Tests;

public class PlanTests
{
    private static LoraTrack Lora(PassPlan pass, string name) => Assert.Single(pass.Loras, l => l.Name == name);

    [Fact]
    public void PlainPromptFollowsA1111()
    {
        var plan = PromptPlan.Create("a [cat:dog:5] <lora:foo:0.8:0.4> AND forest:0.7", 10);
        Assert.False(plan.UsesExtendedSyntax);
        Assert.True(plan.IsOk);
        var pass = plan.Base;
        Assert.Equal([1.0, 0.7], pass.Parts.Select(p => p.Weight));
        var texts = pass.Parts[0].Texts;
        // The AND split strips trailing whitespace from every part.
        Assert.Equal(["a cat", "a dog"], texts.Select(t => t.Text));
        // A1111 gives [5, 'a cat'] to denoiser calls 0..5.
        Assert.Equal([new StepRange(0, 5)], texts[0].Ranges);
        Assert.Equal([new StepRange(6, 9)], texts[1].Ranges);
        var foo = Lora(pass, "foo");
        Assert.All(foo.Te, v => Assert.Equal(0.8, v));
        Assert.All(foo.Unet, v => Assert.Equal(0.4, v));
        var change = Assert.Single(pass.Changes);
        Assert.Equal(0, change.Step);
        Assert.Equal(new LoraSetting("foo", 0.8, 0.4), Assert.Single(change.Loras));
        Assert.Equal([("a cat", 1.0)], texts[0].WeightedFragments);
    }

    [Fact]
    public void PlanRowsSplitWhereATextOrAMultiplierChanges()
    {
        // [cat:dog:5] switches after call 5; [<lora:x:1>::3] (extended syntax) drops x after call 3 (end_at_step 3).
        var plain = PromptPlan.Create("a [cat:dog:5] <lora:foo:0.8>", 10).Base;
        Assert.Equal([new PlanRow(0, 5), new PlanRow(6, 9)], PlanRows.Of(plain));
        Assert.Equal(["0-5", "6-9"], PlanRows.Of(plain).Select(r => r.Steps));
        var scheduled = PromptPlan.Create("a [cat:dog:5] [<lora:x:1>::3]", 10).Base;
        Assert.Equal([new PlanRow(0, 3), new PlanRow(4, 5), new PlanRow(6, 9)], PlanRows.Of(scheduled));
        var one = PromptPlan.Create("a cat", 1).Base;
        Assert.Equal("0", Assert.Single(PlanRows.Of(one)).Steps);
    }

    [Theory]
    [InlineData("a cat [<lora:a:1>::0.5] <lora:b:1> AND sky <lora:c:1> :0.5")]
    [InlineData("a <lora:a:1>:1.2 [<lora:b:1>::2]   ")]
    [InlineData("[<lora:a:1>|x] y <lora:b:0.5>  AND <lora:c:1>")]
    public void TagsInsideEditsLeaveA1111sTextsAndWeights(string prompt)
    {
        // A1111 removes the tags first; scheduling them must not change any text or AND weight A1111 computes.
        var plan = PromptPlan.Create(prompt, 6);
        var a1111 = A1111Result.Compute(prompt, 6, null);
        Assert.True(plan.UsesExtendedSyntax);
        Assert.Equal(a1111.AndParts.Select(p => p.Weight), plan.Base.Parts.Select(p => p.Weight));
        for (int k = 0; k < a1111.AndParts.Count; k++)
        {
            var schedule = a1111.MulticondSchedules[k].Value!;
            for (int step = 0; step < 6; step++)
                Assert.Equal(schedule.First(e => step <= e.EndAtStep).Text, plan.Base.Parts[k].TextAt(step));
        }
    }

    [Fact]
    public void LastEntryCanCoverNoCall()
    {
        var part = PromptPlan.Create("[a:b:19]", 20).Base.Parts[0];
        Assert.Equal([new StepRange(0, 19)], part.Texts[0].Ranges);
        Assert.Empty(part.Texts[1].Ranges);
    }

    [Fact]
    public void LoraSwitchInsideEdit()
    {
        var plan = PromptPlan.Create("photo [<lora:a:1>:<lora:b:1>:0.5]", 20);
        Assert.True(plan.UsesExtendedSyntax);
        var pass = plan.Base;
        var a = Lora(pass, "a");
        var b = Lora(pass, "b");
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(i <= 10 ? 1.0 : 0.0, a.Te[i]);
            Assert.Equal(i <= 10 ? 0.0 : 1.0, b.Unet[i]);
        }
        Assert.Equal([0, 11], pass.Changes.Select(c => c.Step));
        Assert.Equal([new LoraSetting("a", 0, 0), new LoraSetting("b", 1, 1)], pass.Changes[1].Loras);
        // The texts are what A1111 gives for the tag-free prompt.
        Assert.Equal(["photo "], pass.Parts[0].Texts.Select(t => t.Text));
    }

    [Fact]
    public void LoraDroppedAfterStep()
    {
        var pass = PromptPlan.Create("x [<lora:a:0.8>::10]", 20).Base;
        var a = Lora(pass, "a");
        Assert.Equal(0.8, a.Te[10]);
        Assert.Equal(0.0, a.Te[11]);
    }

    [Fact]
    public void KeyframesInterpolateLinearly()
    {
        var pass = PromptPlan.Create("<lora:a:0@0,1@0.5:unet=2@0,0@10>", 20).Base;
        var a = Lora(pass, "a");
        Assert.Equal(0.0, a.Te[0]);
        Assert.Equal(0.5, a.Te[5], 12);
        Assert.Equal(1.0, a.Te[10]);
        Assert.Equal(1.0, a.Te[19]);
        Assert.Equal(2.0, a.Unet[0]);
        Assert.Equal(1.0, a.Unet[5], 12);
        Assert.Equal(0.0, a.Unet[15]);
        Assert.Equal(Enumerable.Range(0, 11), pass.Changes.Select(c => c.Step)); // ramps until call 10, then constant
    }

    [Fact]
    public void LoraAddedByEditAndAlternated()
    {
        var late = Lora(PromptPlan.Create("x [:<lora:a:1>:5]", 20).Base, "a");
        Assert.Equal(0.0, late.Te[5]);
        Assert.Equal(1.0, late.Te[6]);
        var pass = PromptPlan.Create("x [<lora:a:1>|<lora:b:0.5>]", 4).Base;
        // Entries [1,a] [2,b] [3,a] [4,b]: calls 0 and 1 both use the first (A1111's i <= end_at_step rule).
        Assert.Equal([1.0, 1, 0, 1], Lora(pass, "a").Te);
        Assert.Equal([0, 0, 0.5, 0], Lora(pass, "b").Unet);
    }

    [Fact]
    public void DuplicateLorasAddUp()
    {
        var pass = PromptPlan.Create("<lora:a:0.5> <lora:a:0.25:stop=2>", 4).Base;
        Assert.Equal([0.75, 0.75, 0.75, 0.5], Lora(pass, "a").Te);
    }

    [Fact]
    public void HypernetErrorsReportedInExtendedMode()
    {
        var plan = PromptPlan.Create("<hypernet:h:x> <lora:a:1:stop=2>", 4);
        Assert.True(plan.UsesExtendedSyntax);
        Assert.Contains(plan.Errors, e => e.Kind == PromptErrorKind.ValueError && e.Position == 0);
    }

    [Fact]
    public void StartAndStopWindow()
    {
        var pass = PromptPlan.Create("<lora:a:0.5:start=4:stop=0.5>", 20).Base;
        var a = Lora(pass, "a");
        Assert.Equal([0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0], a.Te);
    }

    [Fact]
    public void ExtensionsOffGivesA1111ValueError()
    {
        var off = PromptPlan.Create("<lora:a:0@0,1@0.5>", 10, extensions: false);
        Assert.False(off.UsesExtendedSyntax);
        // A1111 prints the error and generates without LoRAs.
        var e = Assert.Single(off.Errors);
        Assert.Equal(PromptErrorKind.ValueError, e.Kind);
        Assert.False(PromptPlan.ErrorIsFatalInA1111(e));
        Assert.Empty(off.Base.Loras);
    }

    [Fact]
    public void BadKeyframeIsATypedErrorWithPosition()
    {
        var plan = PromptPlan.Create("abc <lora:a:1@x>", 10);
        var e = Assert.Single(plan.Errors);
        Assert.Equal(PromptErrorKind.SyntaxError, e.Kind);
        Assert.Equal(4, e.Position);
        Assert.Contains("'x'", e.Message);
        Assert.Empty(plan.Base.Loras);
    }

    [Fact]
    public void HiresPassUsesHiresScheduling()
    {
        var plan = PromptPlan.Create("[a:b:1.5] <lora:l:1:stop=1.5>", 10, 20);
        var hires = plan.Hires!;
        Assert.Equal(20, hires.Steps);
        Assert.Equal(["a", "b"], hires.Parts[0].Texts.Select(t => t.Text));
        Assert.Equal([new StepRange(0, 10)], hires.Parts[0].Texts[0].Ranges);
        var l = Lora(hires, "l");
        Assert.Equal(1.0, l.Te[10]);
        Assert.Equal(0.0, l.Te[11]);
    }

    [Fact]
    public void ErrorsAreReportedNotThrown()
    {
        var plan = PromptPlan.Create("(a:1.2.3) [b:c:1e999]", 10);
        Assert.Contains(plan.Errors, e => e.Kind == PromptErrorKind.OverflowError && e.Position == 15);
        // Positions refer to the prompt as written, tags included.
        var tagged = PromptPlan.Create("<lora:a:1> [b:c:1e999]", 10);
        Assert.Contains(tagged.Errors, e => e.Kind == PromptErrorKind.OverflowError && e.Position == 16);
        var scheduledTag = PromptPlan.Create("[<lora:a:1>::2] [b:c:1e999]", 10);
        Assert.Contains(scheduledTag.Errors, e => e.Kind == PromptErrorKind.OverflowError && e.Position == 21);
        var bad = PromptPlan.Create("x", 0);
        Assert.False(bad.IsOk);
        Assert.Empty(bad.Passes);
    }

    [Fact]
    public void AttentionErrorReportedPerText()
    {
        var plan = PromptPlan.Create("(a:1.2.3)", 10);
        var e = Assert.Single(plan.Errors);
        Assert.Equal(PromptErrorKind.ValueError, e.Kind);
        Assert.Equal(2, e.Position);
        Assert.True(PromptPlan.ErrorIsFatalInA1111(e));
        Assert.Empty(plan.Base.Parts[0].Texts[0].WeightedFragments);
    }
}
