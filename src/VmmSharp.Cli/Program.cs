using System.CommandLine;
using VmmSharp;
using VmmSharp.Cli.Bench;
using VmmSharp.Cli.Commands;

var root = new RootCommand("vmm: a micro-VMM on Linux KVM, built with VmmSharp");

var info = new Command("info", "Show this host's KVM: API version, hardware virtualization or PVM, capabilities, vCPU limits");
info.SetAction(_ => Guarded(InfoCommand.Run));
root.Subcommands.Add(info);

var timeout = new Option<double>("--timeout") { Description = "Stop the guest after this many seconds (0: never)", DefaultValueFactory = _ => 0 };
var run = new Command("run", "Run a guest: with no kernel, the built-in demo guest");
run.Options.Add(timeout);
run.SetAction(r =>
{
    double seconds = r.GetValue(timeout);
    TimeSpan deadline = seconds > 0 ? TimeSpan.FromSeconds(seconds) : Timeout.InfiniteTimeSpan;
    return Guarded(() => DemoCommand.Run(deadline));
});
root.Subcommands.Add(run);

var bench = new Command("bench", "Benchmarks");
var exitsCount = new Option<int>("--exits") { Description = "Exits per round", DefaultValueFactory = _ => 20000 };
var rounds = new Option<int>("--rounds") { Description = "Rounds per variant (the median is reported)", DefaultValueFactory = _ => 9 };
var exits = new Command("exits", "Round trip of a port-I/O exit through the dispatcher against a bare KVM_RUN loop");
exits.Options.Add(exitsCount);
exits.Options.Add(rounds);
exits.SetAction(r => Guarded(() => ExitBench.Run(r.GetValue(exitsCount), r.GetValue(rounds))));
bench.Subcommands.Add(exits);

var guestOption = new Option<string?>("--guest") { Description = "The PVH marker guest (default: build tests/guests/marker)" };
var vmmOption = new Option<string?>("--vmm") { Description = "The vmm binary to measure (default: this one)" };
var qemuOption = new Option<bool>("--qemu") { Description = "Also measure qemu-system-x86_64 -M microvm, alternating" };
var runsOption = new Option<int>("--runs") { Description = "Runs of each", DefaultValueFactory = _ => 15 };
var startup = new Command("startup", "Time from process start to the guest's marker, and peak RSS, against QEMU");
startup.Options.Add(guestOption);
startup.Options.Add(vmmOption);
startup.Options.Add(qemuOption);
startup.Options.Add(runsOption);
startup.SetAction(r => Guarded(() => StartupBench.Run(r.GetValue(guestOption), r.GetValue(vmmOption), r.GetValue(qemuOption), r.GetValue(runsOption))));
bench.Subcommands.Add(startup);
root.Subcommands.Add(bench);

return root.Parse(args).Invoke();

// Errors VmmSharp raises carry their own clear message; anything else is a bug and shows its stack.
static int Guarded(Func<int> command)
{
    try
    {
        return command();
    }
    catch (VmmException e)
    {
        Console.Error.WriteLine($"vmm: {e.Message}");
        return 1;
    }
}
