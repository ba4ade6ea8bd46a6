namespace LoraBridge.Engine.Tests;

public sealed class HiresRulesTests
{
    private static GenerationRequest Request(HiresSettings? hr = null, Img2ImgSettings? i2i = null) => new()
    {
        Prompt = "a cat", Steps = 20, Width = 512, Height = 768, OutputDir = "/tmp/none", Hires = hr, Img2Img = i2i,
    };

    [Theory]
    [InlineData(2.0, 0, 0, 1024, 1536)]
    [InlineData(1.3, 0, 0, 665, 998)] // int() truncation, no rounding to 8
    [InlineData(0, 1024, 0, 1024, 1536)]
    [InlineData(0, 0, 1024, 682, 1024)]
    [InlineData(0, 1024, 1024, 1024, 1536)] // narrower box than the picture: fill the width, crop the height later
    public void TargetFollowsCalculateTargetResolution(double scale, int rx, int ry, int w, int h) =>
        Assert.Equal((w, h), HiresRules.Target(512, 768, new HiresSettings { Scale = scale, ResizeX = rx, ResizeY = ry }));

    [Fact]
    public void OutputSizeIsTheBoxAfterTheLatentCrop()
    {
        Assert.Equal((1024, 1024), HiresRules.OutputSize(512, 768, new HiresSettings { ResizeX = 1024, ResizeY = 1024 }));
        Assert.Equal((664, 992), HiresRules.OutputSize(512, 768, new HiresSettings { Scale = 1.3 }));
    }

    [Fact]
    public void InfotextEntriesInA1111Order()
    {
        var hr = new HiresSettings { Scale = 1.5, Steps = 10, Sampler = "DDIM", Prompt = "a dog", Upscaler = "Latent (nearest-exact)" };
        var r = Request(hr);
        var pass = new SamplingHandle(1, 9, [new("Hires schedule type", "Karras")]);
        Assert.Equal(["Hires sampler: DDIM", "Hires prompt: a dog", "Hires schedule type: Karras", "Hires upscale: 1.5", "Hires steps: 10",
            "Hires upscaler: Latent (nearest-exact)"], HiresRules.Infotext(r, hr, pass).Select(kv => $"{kv.Key}: {kv.Value}"));
        var same = new HiresSettings { Sampler = "Euler a", Prompt = "a cat", ResizeX = 1024 };
        Assert.Equal(["Hires resize: 1024x0", "Hires upscaler: Latent"], HiresRules.Infotext(Request(same), same, null).Select(kv => $"{kv.Key}: {kv.Value}"));
        Assert.Equal("Denoising strength: 0.7", HiresRules.Denoising(Request(new HiresSettings())).Select(kv => $"{kv.Key}: {kv.Value}").Single());
        Assert.Empty(HiresRules.Denoising(Request()));
    }

    [Fact]
    public void ValidationNamesTheBadValue()
    {
        Assert.Contains("1.2", Assert.Throws<ArgumentException>(() => HiresRules.Validate(Request(new HiresSettings { DenoisingStrength = 1.2 }))).Message);
        Assert.Contains("-1", Assert.Throws<ArgumentException>(() => HiresRules.Validate(Request(new HiresSettings { Steps = -1 }))).Message);
        Assert.Contains("scale", Assert.Throws<ArgumentException>(() => HiresRules.Validate(Request(new HiresSettings { Scale = 0 }))).Message);
        var path = Path.GetTempFileName();
        try
        {
            Assert.Contains("stretch", Assert.Throws<ArgumentException>(() =>
                HiresRules.Validate(Request(i2i: new Img2ImgSettings { InitImage = path, ResizeMode = "stretch" }))).Message);
            HiresRules.Validate(Request(i2i: new Img2ImgSettings { InitImage = path, ResizeMode = "resize and fill" }));
            Assert.Contains("hires", Assert.Throws<ArgumentException>(() =>
                HiresRules.Validate(Request(new HiresSettings(), new Img2ImgSettings { InitImage = path }))).Message);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Contains("nope.png", Assert.Throws<ArgumentException>(() => HiresRules.Validate(Request(i2i: new Img2ImgSettings { InitImage = "/nope.png" }))).Message);
    }

    [Fact]
    public void HiresPlanSchedulesTextsAndLorasOverTheHiresSteps()
    {
        var planner = new A1111PromptPlanner();
        // A1111: in the hires pass a fractional switch point counts from 1.0 (the end of the first pass): 1.5 of 4
        // hires steps ends "a" at step 2, and the denoiser uses an entry while its step is <= the end.
        var plan = planner.PlanHires("[a:b:1.5] <lora:x:1> [<lora:y:1>::1.5]", "", 20, 4);
        Assert.Equal(4, plan.Steps.Count);
        Assert.Equal(["a ", "a ", "a ", "b "], plan.Steps.Select(s => s.Positive[0].Text.Split('<')[0].TrimEnd() + " "));
        Assert.Equal([true, true, true, false], plan.Steps.Select(s => s.Networks.Any(n => n.Name == "y")));
        Assert.All(plan.Steps, s => Assert.Contains(s.Networks, n => n.Name == "x"));
        // A first-pass switch at 0.5 is over before the hires pass starts.
        Assert.All(planner.PlanHires("[a:b:0.5]", "", 20, 4).Steps, s => Assert.Equal("b", s.Positive[0].Text));
    }
}
