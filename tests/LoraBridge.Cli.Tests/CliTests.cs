using System.Reflection;
using System.Text.RegularExpressions;

namespace LoraBridge.Cli.Tests;

public sealed class CliTests : IDisposable
{
    private readonly string _cwd = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"lorabridge-cli-{Guid.NewGuid():N}")).FullName;
    public void Dispose() => Directory.Delete(_cwd, recursive: true);

    [Fact]
    public async Task DoctorFromAnotherDirectoryReportsTheRuntimeAndShutsDownWithTorchLoaded()
    {
        // appsettings.json in the working directory must not be read: the content root is the app's folder.
        File.WriteAllText(Path.Combine(_cwd, "appsettings.json"), """{ "LoraBridge": { "Python": { "Executable": "/nonexistent/from-cwd" } } }""");

        // A wait policy the user chose is kept (the runtime's PASSIVE default applies only when it is unset).
        var env = new Dictionary<string, string> { ["OMP_WAIT_POLICY"] = "ACTIVE" };
        var (code, stdout, stderr) = await CliProcess.RunAsync(["doctor", "--torch-threads", "1", "--verbose"], _cwd, env);

        Assert.True(code == 0, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        Assert.DoesNotContain("from-cwd", stdout);
        Assert.Matches(@"(?m)^runtime:  /\S+python3?\S*$", stdout);
        Assert.Matches(@"(?m)^version:  Python 3\.1[0-3]\.\d+$", stdout);
        Assert.Matches(@"(?m)^source:   \S", stdout);
        Assert.Matches(@"(?m)^libpython: /\S+libpython3\.\d+\.so", stdout);
        Assert.Matches(@"(?m)^torch:    \d+\.\d+\S* \(1 CPU threads, OpenMP wait policy ACTIVE\)$", stdout); // --torch-threads and OMP_WAIT_POLICY reached torch
        Assert.Matches(@"(?m)^device:   (CPU \(CUDA not available\)|CUDA: .+)$", stdout);
        Assert.Matches(@"(?m)^BLAS:     .+; 1024³ float32 matmul \d+\.\d GFLOP/s", stdout);
        Assert.Contains("status:   usable", stdout);
        // The host disposed the runtime: Python was finalized (with torch loaded) before the process exited.
        Assert.Matches(@"Python runtime shut down in \d+ ms", stderr);
    }

    [Fact]
    public async Task UnusableExplicitPythonIsAClearErrorWithNonZeroExit()
    {
        var (code, stdout, _) = await CliProcess.RunAsync(["doctor", "--python", "/nonexistent"], _cwd);
        Assert.Equal(1, code);
        Assert.Contains("[skipped] --python / LoraBridge:Python:Executable: /nonexistent — not found: /nonexistent", stdout);
        Assert.Contains("the configured Python /nonexistent is not usable: not found: /nonexistent", stdout);
        Assert.Contains("status:   NOT usable", stdout);
    }

    [Fact]
    public async Task CommandLineOverridesEnvironmentWhichOverridesAppSettings()
    {
        var env = new Dictionary<string, string> { ["LORABRIDGE_PYTHON__EXECUTABLE"] = "/nonexistent/from-env" };
        var (_, fromEnv, _) = await CliProcess.RunAsync(["doctor"], _cwd, env);
        Assert.Contains("/nonexistent/from-env — not found", fromEnv);

        var (_, fromCli, _) = await CliProcess.RunAsync(["doctor", "--python", "/nonexistent/from-cli"], _cwd, env);
        Assert.Contains("/nonexistent/from-cli — not found", fromCli);
        Assert.DoesNotContain("from-env", fromCli);
    }

    [Fact]
    public async Task InvalidConfigurationValueNamesItsKey()
    {
        var env = new Dictionary<string, string> { ["LORABRIDGE_TORCHTHREADS"] = "many" };
        var (code, _, stderr) = await CliProcess.RunAsync(["doctor"], _cwd, env);
        Assert.Equal(2, code);
        Assert.Contains("error: invalid configuration", stderr);
        Assert.Contains("'many' at 'LoraBridge:TorchThreads'", stderr);
    }

    [Fact]
    public async Task VersionPrintsTheAssemblyVersion()
    {
        var v = AssemblyName.GetAssemblyName(CliProcess.CliDll).Version!;
        var (code, stdout, _) = await CliProcess.RunAsync(["--version"], _cwd);
        Assert.Equal(0, code);
        Assert.StartsWith($"{v.Major}.{v.Minor}.{v.Build}", stdout.Trim());
    }

    [Fact]
    public async Task HelpListsCommandsAndGlobalOptions()
    {
        var (code, stdout, _) = await CliProcess.RunAsync(["--help"], _cwd);
        Assert.Equal(0, code);
        foreach (var expected in new[] { "doctor", "setup", "--python", "--webui-dir", "--torch-threads", "--data-dir", "--verbose", "--version" })
            Assert.Contains(expected, stdout);
        Assert.DoesNotContain("python-loop", stdout); // diagnostic command stays hidden
    }

    [Fact]
    public async Task CtrlCInterruptsRunningPythonWorkAndExitsCleanly()
    {
        using var cli = CliProcess.Start(["python-loop", "--seconds", "600", "--verbose"], _cwd, waitFor: "python loop running");
        await cli.WaitForLineAsync(180);
        await Task.Delay(300);
        cli.SendSigint();
        var code = await cli.WaitForExitAsync(60);

        Assert.True(code == 130, $"exit {code}\nstdout:\n{cli.Stdout}\nstderr:\n{cli.Stderr}");
        Assert.Matches(@"python loop interrupted after \d+ iterations", cli.Stdout); // KeyboardInterrupt reached the loop
        Assert.Matches(@"Python runtime shut down in \d+ ms", cli.Stderr);
    }

    [Fact]
    public async Task SetupDryRunPlansPipInstallIntoAnExplicitPythonWithoutTorch()
    {
        var venv = Path.Combine(_cwd, "bare-venv");
        var (venvCode, venvOut) = await RunProcess(TestPython.Executable, ["-m", "venv", "--without-pip", venv]);
        Assert.True(venvCode == 0, venvOut);
        var python = Path.Combine(venv, "bin", "python");

        var (code, stdout, stderr) = await CliProcess.RunAsync(["setup", "--dry-run", "--python", python], _cwd);

        Assert.True(code == 1, $"exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        var lockFile = Path.Combine(Path.GetDirectoryName(CliProcess.CliDll)!, "requirements.lock");
        Assert.Contains($"  {python} -m pip install -r {lockFile}", stdout);
        Assert.Contains("(dry run: nothing was changed)", stdout);
        Assert.False(File.Exists(Path.Combine(venv, "lib", "python3.11", "site-packages", "torch")));
    }

    [Fact]
    public void ShippedRequirementsLockPinsPipPackagesAndListsDebianEquivalents()
    {
        var lockFile = RequirementsLock.Load(Path.Combine(Path.GetDirectoryName(CliProcess.CliDll)!, "requirements.lock"));
        Assert.Equal(new[] { "torch", "numpy", "pillow" }, lockFile.PipRequirements.Select(r => r.Split("==")[0]));
        Assert.All(lockFile.PipRequirements, r => Assert.Matches(@"^[a-z]+==\d+\.\d+\.\d+$", r));
        foreach (var pkg in new[] { "python3-torch", "python3-numpy", "python3-pil", "libopenblas0-openmp" })
            Assert.Contains(pkg, lockFile.AptPackages);
        Assert.Contains(lockFile.AptPackages, p => Regex.IsMatch(p, @"^libpython3\.\d+$"));
        Assert.Contains("libpython3.12", lockFile.AptPackagesFor(new Version(3, 12, 1)));
    }

    [Fact]
    public void MalformedRequirementsLockNamesFileAndLine()
    {
        var path = Path.Combine(_cwd, "requirements.lock");
        File.WriteAllText(path, "# comment\ntorch==2.5.1\nnumpy>=1.0\n");
        var ex = Assert.Throws<InvalidDataException>(() => RequirementsLock.Load(path));
        Assert.Equal($"{path}:3: expected a pinned requirement 'name==version', got 'numpy>=1.0'", ex.Message);
    }

    private static async Task<(int, string)> RunProcess(string exe, string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, output);
    }
}
