using Python.Runtime;

namespace LoraBridge.Python.Tests;

[Collection("python")]
public sealed class RuntimeTests(PythonFixture fx)
{
    private PythonBridge Bridge => fx.Bridge;

    [Fact]
    public async Task EmbeddedInterpreterIsTheVenvWithTorch()
    {
        var info = await Bridge.GetRuntimeInfoAsync();
        Assert.Equal(fx.VenvDir, info.Prefix);
        Assert.Equal(fx.VenvPython, info.Executable);
        Assert.Equal(fx.Report.Winner!.Probe!.BasePrefix, info.BasePrefix);
        Assert.Equal(fx.Report.Winner.Probe.TorchVersion, info.TorchVersion);
        Assert.Equal(fx.Report.Winner.Probe.Version.ToString(), info.PythonVersion);
        Assert.Contains(info.Device, new[] { "cpu", "cuda" });
    }

    [Fact]
    public async Task PthFilesInTheVenvAreHonoured()
    {
        var value = await fx.Runtime.InvokeAsync(() =>
        {
            using var module = Py.Import(PythonFixture.PthModule);
            using var v = module.GetAttr("VALUE");
            return v.As<string>();
        });
        Assert.Equal("seen through a .pth file", value);
    }

    [Fact]
    public async Task TorchThreadCountComesFromTheOptionsAndReachesTheNativeEnvironment()
    {
        var info = await Bridge.GetRuntimeInfoAsync();
        Assert.Equal(PythonFixture.TorchThreads, info.TorchThreads);
        Assert.Equal(PythonFixture.TorchThreads.ToString(), info.OmpNumThreadsEnv);
        Assert.Equal(PythonFixture.TorchThreads, fx.Runtime.TorchThreads);
    }

    [Fact]
    public async Task IdleOpenMpThreadsSleepUnlessTheEnvironmentChoseAPolicy()
    {
        var info = await Bridge.GetRuntimeInfoAsync();
        // Unset before the boot: the runtime's default reached the native environment torch's OpenMP reads.
        Assert.Equal(string.IsNullOrEmpty(fx.WaitPolicyBeforeBoot) ? PythonRuntime.DefaultOmpWaitPolicy : fx.WaitPolicyBeforeBoot, info.OmpWaitPolicyEnv);
    }

    [Fact]
    public async Task PythonExceptionBecomesTypedExceptionAndInterpreterStaysUsable()
    {
        var ex = await Assert.ThrowsAsync<PythonCallException>(() => Bridge.RaiseAsync("ValueError", "bad value 42"));
        Assert.Equal("ValueError", ex.PythonType);
        Assert.Equal("bad value 42", ex.PythonMessage);
        Assert.Equal("ValueError: bad value 42", ex.Message);
        Assert.StartsWith("Traceback (most recent call last):", ex.PythonTraceback);
        Assert.Contains("diagnostics.py", ex.PythonTraceback);
        Assert.Contains("in _raise_nested", ex.PythonTraceback);
        Assert.Contains("ValueError: bad value 42", ex.PythonTraceback);

        var other = await Assert.ThrowsAsync<PythonCallException>(() => Bridge.RaiseAsync("len", "x"));
        Assert.Equal("TypeError", other.PythonType);
        Assert.Equal("fail: 'len' is not a builtin exception type", other.PythonMessage);

        Assert.Equal("still alive", await Bridge.EchoAsync("still alive"));
    }

    [Fact]
    public async Task DotNetExceptionsFromWorkPassThroughUnchanged()
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => fx.Runtime.InvokeAsync<int>(() => throw new InvalidOperationException("from C#")));
        Assert.Equal("from C#", ex.Message);
    }

    [Theory]
    [InlineData(BusyLoopKind.Python)]
    [InlineData(BusyLoopKind.Torch)]
    public async Task CancellingALongPythonLoopInterruptsIt(BusyLoopKind kind)
    {
        Assert.True(await Bridge.BusyLoopAsync(0.001) > 0); // last state is now "completed", not a leftover "interrupted"
        using var started = new ManualResetEventSlim();
        using var cts = new CancellationTokenSource();
        // Items run in arrival order: once the first has run, the Python thread moves straight on to the loop.
        _ = fx.Runtime.InvokeAsync(started.Set);
        var loop = Bridge.BusyLoopAsync(600, kind, cts.Token);
        Assert.True(started.Wait(TimeSpan.FromSeconds(60)));
        await Task.Delay(300);
        Assert.False(loop.IsCompleted);
        cts.Cancel();

        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop);
        Assert.Equal(cts.Token, ex.CancellationToken);
        var (state, iterations) = await Bridge.GetLastLoopStateAsync();
        Assert.Equal("interrupted", state); // stopped by KeyboardInterrupt, not by running out its 600 s
        Assert.True(iterations > 0);
        Assert.Equal("after cancel", await Bridge.EchoAsync("after cancel"));
    }

    [Fact]
    public async Task WorkCancelledBeforeItStartsNeverRuns()
    {
        using var blocker = new CancellationTokenSource();
        var busy = Bridge.BusyLoopAsync(600, BusyLoopKind.Python, blocker.Token);
        using var cts = new CancellationTokenSource();
        bool ran = false;
        var queued = fx.Runtime.InvokeAsync(() => ran = true, cts.Token);
        cts.Cancel();
        blocker.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => busy);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
        Assert.False(ran);
        Assert.True(fx.Runtime.InvokeAsync(() => 1, new CancellationToken(canceled: true)).IsCanceled);
    }

    [Fact]
    public async Task CancellationAfterCompletionDoesNotLeakAnInterruptIntoLaterWork()
    {
        for (int i = 0; i < 20; i++)
        {
            using var cts = new CancellationTokenSource();
            var t = Bridge.BusyLoopAsync(0.02, BusyLoopKind.Python, cts.Token);
            await Task.Delay(15);
            cts.Cancel();
            try { await t; } catch (OperationCanceledException) { }
            Assert.Equal(i, (int)(await fx.Runtime.InvokeAsync(() => Bridge.Echo(i))));
            Assert.True((await Bridge.BusyLoopAsync(0.01)) > 0);
        }
    }

    [Fact]
    public async Task AllWorkRunsOnOneDedicatedThreadInArrivalOrder()
    {
        var tasks = Enumerable.Range(0, 64).Select(i => Task.Run(() => fx.Runtime.InvokeAsync(() =>
            (Thread: Environment.CurrentManagedThreadId, OnPython: fx.Runtime.IsOnPythonThread, Value: Bridge.Echo(i))))).ToArray();
        var results = await Task.WhenAll(tasks);
        Assert.Single(results.Select(r => r.Thread).Distinct());
        Assert.All(results, r => Assert.True(r.OnPython));
        Assert.Equal(Enumerable.Range(0, 64).Select(i => (long)i), results.Select(r => r.Value));
        Assert.False(fx.Runtime.IsOnPythonThread);
    }

    [Fact]
    public async Task NestedInvokeFromThePythonThreadRunsInline()
    {
        var value = await fx.Runtime.InvokeAsync(() => fx.Runtime.InvokeAsync(() => Bridge.Echo(7)).Result);
        Assert.Equal(7, value);
    }

    [Fact]
    public void ASecondRuntimeCannotBeStarted()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => PythonRuntime.Start(fx.Report, new PythonRuntimeOptions()));
        Assert.Contains("only once", ex.Message);
        Assert.Same(fx.Runtime, PythonRuntime.Current);
    }

    [Fact]
    public async Task BridgeModuleIsNotReachableOffThePythonThread()
    {
        Assert.Throws<InvalidOperationException>(() => Bridge.Echo(1));
        Assert.Equal(1, await fx.Runtime.InvokeAsync(() => Bridge.Echo(1)));
    }

    [Fact]
    public async Task BlasCheckMeasuresAMatmul()
    {
        var r = await Bridge.CheckBlasAsync(256, 2);
        Assert.Equal(256, r.Size);
        Assert.True(r.Seconds > 0);
        Assert.Equal(2.0 * 256 * 256 * 256 / r.Seconds / 1e9, r.GFlops, 6);
    }
}
