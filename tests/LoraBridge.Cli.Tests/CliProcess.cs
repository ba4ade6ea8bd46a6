using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace LoraBridge.Cli.Tests;

/// <summary>Runs the built `lorabridge` as a child process, the way a user would.</summary>
internal sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource _firstLine = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? _waitFor;

    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>src/LoraBridge.Cli/bin/&lt;same configuration as the tests&gt;/net10.0/lorabridge.dll, with python/ and appsettings.json beside it.</summary>
    public static string CliDll { get; } = FindCliDll();

    private CliProcess(IEnumerable<string> args, string workDir, IDictionary<string, string>? env, bool defaultSigint, string? waitFor)
    {
        _waitFor = waitFor;
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
        ProcessStartInfo psi;
        if (defaultSigint)
        {
            // A child inherits an ignored SIGINT (e.g. when the test run itself is a background job), and .NET then
            // never sees Ctrl+C; reset it to the default before exec so the test does not depend on how it was started.
            psi = new ProcessStartInfo(TestPython.Executable);
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])");
            psi.ArgumentList.Add(dotnet);
        }
        else
        {
            psi = new ProcessStartInfo(dotnet);
        }
        psi.ArgumentList.Add(CliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.WorkingDirectory = workDir;
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_stdout) _stdout.AppendLine(e.Data);
            if (_waitFor is not null && e.Data.Contains(_waitFor, StringComparison.Ordinal)) _firstLine.TrySetResult();
        };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }
    public int Pid => _process.Id;

    public static async Task<(int Code, string Stdout, string Stderr)> RunAsync(
        IEnumerable<string> args, string? workDir = null, IDictionary<string, string>? env = null, int timeoutSeconds = 180)
    {
        using var p = new CliProcess(args, workDir ?? Path.GetTempPath(), env, defaultSigint: false, waitFor: null);
        var code = await p.WaitForExitAsync(timeoutSeconds);
        return (code, p.Stdout, p.Stderr);
    }

    public static CliProcess Start(IEnumerable<string> args, string workDir, string waitFor) =>
        new(args, workDir, null, defaultSigint: true, waitFor);

    public async Task WaitForLineAsync(int timeoutSeconds)
    {
        var done = await Task.WhenAny(_firstLine.Task, _process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(timeoutSeconds)));
        Assert.True(_firstLine.Task.IsCompleted, $"'{_waitFor}' never appeared.\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        _ = done;
    }

    public async Task<int> WaitForExitAsync(int timeoutSeconds)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            Assert.Fail($"lorabridge did not exit within {timeoutSeconds} s.\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        }
        _process.WaitForExit(); // drains the asynchronous output readers
        return _process.ExitCode;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public void SendSigint()
    {
        const int SIGINT = 2;
        Assert.Equal(0, Kill(_process.Id, SIGINT));
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoraBridge.sln"))) return d.FullName;
        throw new InvalidOperationException($"LoraBridge.sln not found above {AppContext.BaseDirectory}");
    }

    private static string FindCliDll()
    {
        // bin/<Configuration>/<tfm>/ of this test assembly tells which build of the CLI belongs to this run.
        var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var dll = Path.Combine(RepoRoot, "src", "LoraBridge.Cli", "bin", tfmDir.Parent!.Name, tfmDir.Name, "lorabridge.dll");
        if (!File.Exists(dll)) throw new InvalidOperationException($"{dll} not found; build src/LoraBridge.Cli first");
        return dll;
    }
}
