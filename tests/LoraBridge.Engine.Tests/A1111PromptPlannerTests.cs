using LoraBridge.Engine;

namespace LoraBridge.Engine.Tests;

public class A1111PromptPlannerTests
{
    private readonly A1111PromptPlanner _planner = new();

    [Fact]
    public void EditsAndLoraTracksBecomePerStepConditioning()
    {
        var plan = _planner.Plan("[a cat:a dog:2] <lora:style:0.5:1> AND sky:0.5", "[blurry:ugly:3]", 4);
        Assert.Equal(4, plan.Steps.Count);
        // A1111: entry [2, "a cat"] covers calls 0..2 (the AND split strips the part's trailing space).
        Assert.Equal(["a cat", "a cat", "a cat", "a dog"], plan.Steps.Select(s => s.Positive[0].Text));
        Assert.Equal((" sky", 0.5), plan.Steps[0].Positive[1]); // A1111 keeps the leading space
        Assert.Equal(["blurry", "blurry", "blurry", "blurry"], plan.Steps.Select(s => s.Negative));
        Assert.Equal(new NetworkSetting("style", 0.5, 1.0, null), Assert.Single(plan.Steps[3].Networks));
        Assert.Equal(["style"], plan.NetworkNames);
    }

    [Fact]
    public void EachPartsScheduleIsOneEncodingBatch()
    {
        var plan = _planner.Plan("[a cat:a dog:2] AND [x|y]", "[blurry:ugly:1]", 4);
        Assert.Equal(2, plan.PositiveBatches!.Count);
        Assert.Equal(["a cat", "a dog"], plan.PositiveBatches[0]);
        Assert.Equal([" x", " y", " x", " y"], plan.PositiveBatches[1]); // alternation: one entry per step, repeats kept
        Assert.Equal(["blurry", "ugly"], plan.NegativeBatch);
    }

    [Fact]
    public void LoraInsideAnEditIsScheduled()
    {
        var plan = _planner.Plan("a cat [<lora:style:1>::0.5]", "", 10);
        Assert.Equal(1.0, plan.Steps[0].Networks.Single().Unet);
        Assert.Empty(plan.Steps[9].Networks);
    }

    [Fact]
    public void NegativePromptKeepsTagsAsText()
    {
        var plan = _planner.Plan("a", "<lora:x:1> AND b", 2);
        Assert.Equal("<lora:x:1> AND b", plan.Steps[0].Negative);
        Assert.Empty(plan.NetworkNames);
    }

    [Fact]
    public void ErrorsCarryTheirPosition()
    {
        var ex = Assert.Throws<PromptPlanException>(() => _planner.Plan("a (b:1.2.3)", "", 4));
        Assert.Contains("at character", ex.Message);
        Assert.Throws<PromptPlanException>(() => _planner.Plan("a <lora:te=0.5>", "", 4));
    }

    [Fact]
    public void AttentionFollowsA1111() =>
        Assert.Equal([("a ", 1.0), ("b", 1.1)], _planner.Attention("a (b)"));
}
