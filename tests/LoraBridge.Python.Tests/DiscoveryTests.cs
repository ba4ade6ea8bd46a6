namespace LoraBridge.Python.Tests;

public sealed class DiscoveryTests : IDisposable
{
    private readonly string _tmp = TestPython.TempDir("discovery");
    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string EmptyDir(string name) => Directory.CreateDirectory(Path.Combine(_tmp, name)).FullName;

    [Fact]
    public async Task DebianSystemPythonIsChosenWhenPathHasNoPython()
    {
        var report = await new PythonDiscovery(new PythonRuntimeOptions { SearchPath = EmptyDir("empty-path") }).DiscoverAsync();

        var onPath = Assert.Single(report.Candidates, c => c.Source == PythonSource.Path);
        Assert.Equal(CandidateStatus.Skipped, onPath.Status);
        Assert.Equal("python3 is not on PATH", onPath.Reason);
        var winner = Assert.IsType<PythonCandidate>(report.Winner);
        Assert.Equal(PythonSource.System, winner.Source);
        Assert.Equal(new PythonRuntimeOptions().SystemPython, winner.Path); // the product's default, not the tests' setting
        var p = winner.Probe!;
        Assert.InRange(new Version(p.Version.Major, p.Version.Minor), PythonDiscovery.MinVersion, PythonDiscovery.MaxVersion);
        Assert.False(p.IsVenv);
        Assert.True(p.SharedEnabled);
        Assert.True(File.Exists(p.LibPython), $"libpython {p.LibPython} does not exist");
        Assert.Matches(@"libpython3\.\d+\.so", Path.GetFileName(p.LibPython!));
        Assert.False(string.IsNullOrEmpty(p.TorchVersion));
        Assert.Contains(p.SitePackages, s => s.Contains("packages", StringComparison.Ordinal));
        Assert.Contains("[chosen] system python: /usr/bin/python3", report.Describe());
    }

    [Fact]
    public async Task SystemSitePackagesVenvIsDiscoveredWithTheVenvAsPrefix()
    {
        var venv = Path.Combine(_tmp, "venv");
        var python = TestPython.CreateVenv(venv, systemSitePackages: true);
        var system = await PythonDiscovery.ProbeAsync(TestPython.System, TimeSpan.FromSeconds(60));

        var report = await new PythonDiscovery(new PythonRuntimeOptions { Executable = python }).DiscoverAsync();

        var winner = Assert.IsType<PythonCandidate>(report.Winner);
        Assert.Equal(PythonSource.Explicit, winner.Source);
        var p = winner.Probe!;
        Assert.Equal(venv, p.Prefix);
        Assert.Equal(system.Prefix, p.BasePrefix);
        Assert.True(p.IsVenv);
        Assert.Equal(python, p.Executable); // not resolved to /usr/bin/python3.x: the venv must stay the ProgramName
        Assert.Equal(system.LibPython, p.LibPython);
        Assert.Equal(system.TorchVersion, p.TorchVersion);
        // An explicit executable is authoritative: nothing else is tried.
        Assert.All(report.Candidates.Where(c => c != winner), c =>
        {
            Assert.Equal(CandidateStatus.NotTried, c.Status);
            Assert.Equal("an explicit executable is configured", c.Reason);
        });
    }

    [Fact]
    public async Task WebUiVenvIsPreferredOverPathAndSystemPython()
    {
        var webui = EmptyDir("stable-diffusion-webui");
        var python = TestPython.CreateVenv(Path.Combine(webui, "venv"), systemSitePackages: true);

        var report = await new PythonDiscovery(new PythonRuntimeOptions { WebUiDir = webui, SearchPath = EmptyDir("p") }).DiscoverAsync();

        Assert.Equal(PythonSource.WebUiVenv, report.Winner?.Source);
        Assert.Equal(python, report.Winner!.Path);
        Assert.Equal(Path.Combine(webui, "venv"), report.Winner.Probe!.Prefix);
        var system = Assert.Single(report.Candidates, c => c.Source == PythonSource.System);
        Assert.Equal(CandidateStatus.NotTried, system.Status);
        Assert.Equal("an earlier candidate was chosen", system.Reason);
    }

    [Fact]
    public async Task MissingWebUiVenvIsSkippedAndDiscoveryFallsBack()
    {
        var webui = EmptyDir("webui-without-venv");
        var report = await new PythonDiscovery(new PythonRuntimeOptions { WebUiDir = webui, SearchPath = EmptyDir("p") }).DiscoverAsync();

        var c = Assert.Single(report.Candidates, c => c.Source == PythonSource.WebUiVenv);
        Assert.Equal(CandidateStatus.Skipped, c.Status);
        Assert.Equal($"not found: {Path.Combine(webui, "venv", "bin", "python")}", c.Reason);
        Assert.Equal(PythonSource.System, report.Winner?.Source);
    }

    [Fact]
    public async Task PythonWithoutSharedLibpythonIsSkippedWithItsReason()
    {
        var pathDir = EmptyDir("static-bin");
        var fake = TestPython.CreateStaticLookalike(pathDir);

        var report = await new PythonDiscovery(new PythonRuntimeOptions { SearchPath = pathDir }).DiscoverAsync();

        var skipped = Assert.Single(report.Candidates, c => c.Source == PythonSource.Path);
        Assert.Equal(fake, skipped.Path);
        Assert.Equal(CandidateStatus.Skipped, skipped.Status);
        Assert.Equal("no shared libpython: this Python was built without --enable-shared (Py_ENABLE_SHARED=0)", skipped.Reason);
        Assert.NotNull(skipped.Probe);
        Assert.Null(skipped.Probe!.LibPython);
        Assert.Equal(PythonSource.System, report.Winner?.Source);
        Assert.Contains($"[skipped] python3 on PATH: {fake}", report.Describe());
    }

    [Fact]
    public async Task VenvWithoutTorchIsSkippedWithItsReasonAndNothingIsChosen()
    {
        var python = TestPython.CreateVenv(Path.Combine(_tmp, "bare"), systemSitePackages: false);

        var report = await new PythonDiscovery(new PythonRuntimeOptions { Executable = python }).DiscoverAsync();

        var c = report.Candidates[0];
        Assert.Equal(CandidateStatus.Skipped, c.Status);
        Assert.Equal("torch is not importable: ModuleNotFoundError: No module named 'torch'", c.Reason);
        Assert.NotNull(c.Probe!.LibPython); // the interpreter itself is fine; only torch is missing
        Assert.Null(report.Winner);
        var ex = Assert.Throws<PythonRuntimeUnavailableException>(() => PythonRuntime.Start(report, new PythonRuntimeOptions()));
        Assert.Contains("No usable Python found", ex.Message);
        Assert.Contains(python, ex.Message);
        Assert.Same(report, ex.Report);
    }

    [Fact]
    public async Task NonexistentExplicitExecutableIsReported()
    {
        var report = await new PythonDiscovery(new PythonRuntimeOptions { Executable = "/nonexistent/python3" }).DiscoverAsync();
        Assert.Null(report.Winner);
        Assert.Equal("not found: /nonexistent/python3", report.Candidates[0].Reason);
    }

    [Fact]
    public async Task ExecutableThatIsNotPythonIsSkipped()
    {
        var c = await new PythonDiscovery(new PythonRuntimeOptions()).EvaluateAsync(PythonSource.Explicit, "/bin/false");
        Assert.Equal(CandidateStatus.Skipped, c.Status);
        Assert.StartsWith("/bin/false exited with code 1 without describing itself", c.Reason);
    }

    [Theory]
    [InlineData(3, 9, "Python 3.9.18 is outside the supported 3.10–3.13")]
    [InlineData(3, 14, "Python 3.14.18 is outside the supported 3.10–3.13")]
    [InlineData(3, 12, null)]
    public void VersionOutsideTheSupportedRangeIsRejected(int major, int minor, string? reason)
    {
        var probe = new PythonProbe("/x/python3", new Version(major, minor, 18), "/x", "/x", [], true, "/x/libpython.so", "2.5.1", null, null, null);
        Assert.Equal(reason, PythonDiscovery.Reject(probe));
    }

    [Fact]
    public void FindOnPathReturnsTheFirstExecutableMatch()
    {
        var a = EmptyDir("a");
        var b = EmptyDir("b");
        File.WriteAllText(Path.Combine(a, "python3"), "not executable");
        var exe = TestPython.CreateStaticLookalike(b);
        Assert.Equal(exe, PythonDiscovery.FindOnPath("python3", $"{a}:{b}"));
        Assert.Null(PythonDiscovery.FindOnPath("python3", a));
    }
}
