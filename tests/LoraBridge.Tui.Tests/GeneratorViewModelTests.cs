using LoraBridge.Engine;

namespace LoraBridge.Tui.Tests;

public class GeneratorViewModelTests
{
    private static GeneratorViewModel Valid() => new("/tmp/out", "64x64")
    {
        Prompt = "a lighthouse <lora:demo_style:0.5>",
        NegativePrompt = "blurry",
        StepsText = "6",
        CfgText = "5.5",
        SeedText = "42",
        Sampler = "dpm++ 2m",
    };

    // Runs posted actions one at a time, as the UI thread would.
    private sealed class Dispatcher
    {
        private readonly Lock _gate = new();
        public void Post(Action action) { lock (_gate) action(); }
    }

    [Fact]
    public void ValidFormBuildsTheRequest()
    {
        var (request, errors) = Valid().BuildRequest();
        Assert.Empty(errors);
        Assert.NotNull(request);
        Assert.Equal("a lighthouse <lora:demo_style:0.5>", request.Prompt);
        Assert.Equal("blurry", request.NegativePrompt);
        Assert.Equal(6, request.Steps);
        Assert.Equal(5.5, request.CfgScale);
        Assert.Equal(42, request.Seed);
        Assert.Equal((64, 64), (request.Width, request.Height));
        Assert.Equal("DPM++ 2M", request.Sampler);   // case-insensitive, written as the engine names it
        Assert.Equal("/tmp/out", request.OutputDir);
    }

    [Fact]
    public void EveryBadFieldIsNamed()
    {
        var vm = Valid();
        vm.StepsText = "0";
        vm.CfgText = "x";
        vm.SeedText = "-2";
        vm.SizeText = "100x64";
        vm.Sampler = "Heun";
        var (request, errors) = vm.BuildRequest();
        Assert.Null(request);
        Assert.Equal(5, errors.Count);
        Assert.StartsWith("steps: '0'", errors[0]);
        Assert.StartsWith("cfg: 'x'", errors[1]);
        Assert.StartsWith("seed: '-2'", errors[2]);
        Assert.StartsWith("size: '100x64'", errors[3]);
        Assert.StartsWith("sampler: 'Heun' is not one of Euler a, Euler, DPM++ 2M, DDIM", errors[4]);
    }

    [Theory]
    [InlineData("512x768", 512, 768)]
    [InlineData(" 64X64 ", 64, 64)]
    public void SizeParses(string text, int w, int h) => Assert.Equal((w, h), GeneratorViewModel.ParseSize(text));

    [Theory]
    [InlineData("64")]
    [InlineData("64x")]
    [InlineData("0x64")]
    [InlineData("-64x64")]
    [InlineData("63x64")]
    public void BadSizeIsRejected(string text) => Assert.Null(GeneratorViewModel.ParseSize(text));

    [Fact]
    public void PromptErrorsBlockTheRequestWithTheirPosition()
    {
        var vm = Valid();
        vm.Prompt = "ok\n(a:1.2.3)";
        vm.NegativePrompt = "[a:b:1e999]";
        var (request, errors) = vm.BuildRequest();
        Assert.Null(request);
        Assert.Equal(2, errors.Count);
        Assert.StartsWith("prompt line 2, column ", errors[0]);
        Assert.StartsWith("negative prompt line 1, column ", errors[1]);
    }

    [Fact]
    public void PlanTextFollowsPromptAndSteps()
    {
        var vm = Valid();
        vm.Prompt = "a [b:c:0.5]";
        vm.StepsText = "4";
        Assert.Contains("\n  0-2  \"a b\"\n  3    \"a c\"", vm.PlanText());
        vm.StepsText = "10";
        Assert.Contains("\n  0-5  \"a b\"\n  6-9  \"a c\"", vm.PlanText());
        vm.StepsText = "many";
        Assert.Equal("steps: 'many' is not a positive whole number", vm.PlanText());
        vm.StepsText = "4";
        vm.NegativePrompt = "[x:y:1e999]";
        Assert.StartsWith("error: negative prompt line 1, column ", vm.PlanText());
    }

    [Fact]
    public async Task JobRunsReportsProgressAndListsImages()
    {
        var vm = Valid();
        var d = new Dispatcher();
        var states = new List<(JobState, double)>();
        vm.Changed += () => states.Add((vm.State, vm.ProgressFraction));
        GenerationRequest? seen = null;
        var started = await vm.GenerateAsync((request, progress, ct) =>
        {
            seen = request;
            progress.Report(new GenerationProgress(0, 1, 3, 6, 2.0, TimeSpan.FromSeconds(1.5)));
            return Task.FromResult(new JobResult([new GeneratedImage("/tmp/out/00000-42.png", 42, "")], ["LoRA for SDXL"]));
        }, d.Post);
        Assert.True(started);
        Assert.Equal(6, seen!.Steps);
        Assert.Equal(JobState.Idle, vm.State);
        Assert.Equal([(JobState.Running, 0.0), (JobState.Running, 0.5), (JobState.Idle, 1.0)], states);
        Assert.StartsWith("done: 1 image in ", vm.StatusText);
        Assert.EndsWith(", seed 42; warning: LoRA for SDXL", vm.StatusText);
        Assert.Equal("/tmp/out/00000-42.png", Assert.Single(vm.Images).Path);
    }

    [Fact]
    public async Task CancelGoesThroughCancellingBackToIdle()
    {
        var vm = Valid();
        var d = new Dispatcher();
        var running = new TaskCompletionSource();
        // The job holds on after seeing the cancellation until the test lets it go, as an engine restoring weights
        // does: otherwise the job could end before the state is read and the test would race it.
        var release = new TaskCompletionSource();
        var job = vm.GenerateAsync(async (_, _, ct) =>
        {
            running.SetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                await release.Task;
                throw;
            }
            return new JobResult([], []);
        }, d.Post);
        await running.Task;
        Assert.Equal(JobState.Running, vm.State);
        Assert.False(vm.WaitForJob(TimeSpan.FromMilliseconds(50)));   // still sampling
        Assert.True(vm.Cancel());
        Assert.Equal(JobState.Cancelling, vm.State);
        Assert.False(vm.Cancel());   // already cancelling
        release.SetResult();
        Assert.True(vm.WaitForJob(TimeSpan.FromSeconds(10)));
        Assert.True(await job);
        Assert.Equal(JobState.Idle, vm.State);
        Assert.StartsWith("cancelled after ", vm.StatusText);
        Assert.Empty(vm.Images);
        Assert.False(vm.Cancel());   // nothing to cancel
    }

    [Fact]
    public async Task SecondJobIsRefusedWhileOneRuns()
    {
        var vm = Valid();
        var d = new Dispatcher();
        var release = new TaskCompletionSource<JobResult>();
        var calls = 0;
        Generator gen = (_, _, _) => { Interlocked.Increment(ref calls); return release.Task; };
        var first = vm.GenerateAsync(gen, d.Post);
        Assert.False(await vm.GenerateAsync(gen, d.Post));
        Assert.Equal("a job is already running (Esc cancels it)", vm.StatusText);
        release.SetResult(new JobResult([], []));
        Assert.True(await first);
        Assert.Equal(1, calls);
        Assert.Equal("done: 0 images in ", vm.StatusText[..18]);
    }

    [Fact]
    public async Task FailureIsShownAndTheModelStaysUsable()
    {
        var vm = Valid();
        var d = new Dispatcher();
        Assert.True(await vm.GenerateAsync((_, _, _) => throw new LoraBridge.Models.LoraNotFoundException("demo_style", ["demo_subject"], ["/x"]), d.Post));
        Assert.Equal(JobState.Idle, vm.State);
        Assert.StartsWith("error: ", vm.StatusText);
        Assert.Contains("demo_style", vm.StatusText);
        Assert.True(await vm.GenerateAsync((_, _, _) => Task.FromResult(new JobResult([], [])), d.Post));
        Assert.StartsWith("done: ", vm.StatusText);
    }

    [Fact]
    public async Task InvalidFormStartsNoJob()
    {
        var vm = Valid();
        vm.SizeText = "big";
        var called = false;
        Assert.False(await vm.GenerateAsync((_, _, _) => { called = true; return Task.FromResult(new JobResult([], [])); }, new Dispatcher().Post));
        Assert.False(called);
        Assert.Equal(JobState.Idle, vm.State);
        Assert.StartsWith("cannot generate: size: 'big'", vm.StatusText);
    }

    [Fact]
    public async Task PreparationIsAJobThatBlocksGenerate()
    {
        var vm = Valid();
        var d = new Dispatcher();
        var release = new TaskCompletionSource<string>();
        var prep = vm.PrepareAsync(_ => release.Task, d.Post);
        Assert.Equal(JobState.Running, vm.State);
        Assert.False(await vm.GenerateAsync((_, _, _) => Task.FromResult(new JobResult([], [])), d.Post));
        release.SetResult("lorabridge-demo");
        Assert.True(await prep);
        Assert.Equal("ready: lorabridge-demo", vm.StatusText);
        Assert.Equal(JobState.Idle, vm.State);
    }
}
