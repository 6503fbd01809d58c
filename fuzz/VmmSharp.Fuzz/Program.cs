using SharpFuzz;
using VmmSharp.Fuzz;

// The fuzz harnesses' command line: afl-fuzz runs `VmmSharp.Fuzz TARGET` (scripts/fuzz.sh); people replay inputs with
// `VmmSharp.Fuzz TARGET FILE...`. docs/FUZZING.md describes both.
const string Usage = """
    usage: VmmSharp.Fuzz list                  the targets' names
           VmmSharp.Fuzz seeds DIR             writes every target's seed corpus to DIR/TARGET/
           VmmSharp.Fuzz TARGET                under afl-fuzz, the fork server; otherwise runs standard input once
           VmmSharp.Fuzz TARGET PATH...        replays files (a directory: every file in it) without afl-fuzz;
                                               exit status 1 on a crash, 2 on a hang
    """;

if (args.Length == 0)
{
    Console.Error.WriteLine(Usage);
    return 64;
}
if (args[0] == "list")
{
    foreach (IFuzzTarget t in FuzzTargets.All)
    {
        Console.WriteLine(t.Name);
    }
    return 0;
}
if (args[0] == "seeds" && args.Length == 2)
{
    return Corpus.WriteSeeds(args[1]);
}
IFuzzTarget? target = FuzzTargets.Find(args[0]);
if (target is null)
{
    Console.Error.WriteLine($"unknown fuzz target '{args[0]}'; the targets are: {string.Join(", ", FuzzTargets.All.Select(t => t.Name))}");
    return 64;
}
if (args.Length == 1)
{
    // Out of process: a hang or a crash that kills the runtime ends only the child, which the server restarts.
    Fuzzer.OutOfProcess.Run(stream => target.Run(Corpus.ReadAll(stream)));
    return 0;
}
return Replay.Files(target, args[1..]);
