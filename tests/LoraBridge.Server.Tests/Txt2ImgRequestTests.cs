using LoraBridge.Engine;

namespace LoraBridge.Server.Tests;

/// <summary>Reading A1111's request body into the engine's request, without a server.</summary>
public sealed class Txt2ImgRequestTests
{
    private static readonly Txt2ImgRequest.Defaults Defaults = new(ClipSkip: 2, EtaNoiseSeedDelta: 31337, RandnSource: "CPU", SaveImages: false);

    [Fact]
    public void A1111DefaultsFillWhatTheBodyLeavesOutAndOverridesWin()
    {
        var r = Txt2ImgRequest.Parse("""{"prompt": "x", "sampler_name": null}""", new RequestLimits(), Defaults);
        Assert.Equal((50, 512, 512, 7.0, -1L, "Euler a", "Automatic", 2, 31337L, "CPU"),
            (r.Generation.Steps, r.Generation.Width, r.Generation.Height, r.Generation.CfgScale, r.Generation.Seed, r.Generation.Sampler,
             r.Generation.Schedule, r.Generation.ClipSkip, r.Generation.EtaNoiseSeedDelta, r.Generation.RandnSource));
        Assert.True(r.SendImages);
        Assert.False(r.SaveImages);
        Assert.Null(r.Generation.Hires);

        var o = Txt2ImgRequest.Parse("""{"override_settings": {"CLIP_stop_at_last_layers": 1, "sd_model_checkpoint": "lorabridge-demo-xl.safetensors [abc]"}}""",
            new RequestLimits(), Defaults);
        Assert.Equal(1, o.Generation.ClipSkip);
        Assert.Equal("lorabridge-demo-xl.safetensors", A1111Server.CheckpointName(o.Checkpoint));
    }

    [Fact]
    public void EnableHrMapsTheHiresFields()
    {
        var r = Txt2ImgRequest.Parse("""
            {"enable_hr": true, "hr_scale": 1.5, "hr_upscaler": "Latent (nearest-exact)", "hr_second_pass_steps": 3, "denoising_strength": 0.4}
            """, new RequestLimits(), Defaults);
        var h = Assert.IsType<HiresSettings>(r.Generation.Hires);
        Assert.Equal((1.5, "Latent (nearest-exact)", 3, 0.4), (h.Scale, h.Upscaler, h.Steps, h.DenoisingStrength));
        var e = Assert.Throws<ApiError>(() => Txt2ImgRequest.Parse("""{"enable_hr": true, "hr_scale": 50}""", new RequestLimits(), Defaults));
        Assert.Equal((422, "hr_scale: must be between 1 and 8, got 50"), (e.Status, e.Detail));
    }
}
