using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using VmmSharp.Guests;

namespace VmmSharp.Tests;

/// <summary>
/// The layering rule of <c>docs/ARCHITECTURE.md</c>, checked on the compiled library: which folder (namespace)
/// may use which, read from every type's signatures and method bodies.
/// </summary>
public class ArchitectureTests
{
    /// <summary>The table of docs/ARCHITECTURE.md: each folder of src/VmmSharp and the folders it may use.</summary>
    private static readonly Dictionary<string, string[]> MayUse = new()
    {
        ["Interop"] = [],
        ["Memory"] = ["Interop"],
        ["Kvm"] = ["Interop"],
        ["Buses"] = [],
        ["State"] = [],
        ["Events"] = ["Interop"],
        ["Dispatch"] = ["Interop", "Kvm", "Memory"],
        ["Devices"] = ["Interop", "Kvm", "Memory", "Buses", "State"],
        ["Arch"] = ["Kvm", "Memory"],
        ["Vm"] = ["Interop", "Kvm", "Memory", "Dispatch", "Arch", "State"],
        ["Boot"] = ["Memory", "Arch"],
        ["Snapshot"] = ["Interop", "Memory", "State"],
        ["Emulation"] = ["Interop", "Kvm", "Memory", "Buses", "Dispatch"],
        ["Profiling"] = ["Dispatch"],
        ["Machine"] = ["Interop", "Memory", "Kvm", "Buses", "State", "Events", "Dispatch", "Devices", "Arch", "Vm", "Boot", "Emulation", "Snapshot", "Profiling"],
    };

    private static readonly Assembly Library = typeof(VmmException).Assembly;

    [Fact]
    public void EveryFolderUsesOnlyTheFoldersItMayUse()
    {
        var violations = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Type type in Library.GetTypes())
        {
            string? from = Folder(type);
            if (from is null)
            {
                continue; // the root namespace and compiler-generated global types
            }
            if (!MayUse.TryGetValue(from, out string[]? allowed))
            {
                violations.Add($"{from}/ (type {type.FullName}) has no row in the layering table: add one to docs/ARCHITECTURE.md and to ArchitectureTests.MayUse");
                continue;
            }
            foreach (Type used in UsedTypes(type))
            {
                string? to = used.Assembly == Library ? Folder(used) : null;
                if (to is not null && to != from && !allowed.Contains(to))
                {
                    violations.Add($"{from}/ uses {to}/: {Name(type)} uses {Name(used)}");
                }
            }
        }
        Assert.True(violations.Count == 0, "layering violations:\n" + string.Join('\n', violations));
    }

    [Fact]
    public void TheCoreLibraryUsesNoAssembler()
    {
        Assert.DoesNotContain(Library.GetReferencedAssemblies(), a => a.Name == typeof(TinyGuest).Assembly.GetName().Name);
        string[] assemblerTypes = [.. Library.GetTypes()
            .SelectMany(t => UsedTypes(t).Select(u => (t, u)))
            .Where(p => p.u.Namespace == "Iced.Intel" && p.u.Name.Contains("Assembler", StringComparison.Ordinal))
            .Select(p => $"{Name(p.t)} uses {Name(p.u)}")
            .Distinct()];
        Assert.Empty(assemblerTypes);
    }

    [Fact]
    public void OnlyTheTestsSeeTheLibrarysInternals()
    {
        string[] friends = [.. Library.GetCustomAttributes<InternalsVisibleToAttribute>().Select(a => a.AssemblyName)];
        Assert.DoesNotContain("vmm", friends);
        Assert.DoesNotContain(typeof(TinyGuest).Assembly.GetName().Name, friends);
    }

    [Fact]
    public void TheRuleSeesAUseThatOnlyAMethodBodyMakes()
    {
        Assert.Contains(typeof(System.Text.StringBuilder), UsedTypes(typeof(BodyOnlyUse)));
        Assert.Contains(typeof(Uri), UsedTypes(typeof(BodyOnlyUse)));
    }

    /// <summary>Uses two types in its method body only: a field-free, signature-free use the checker must still see.</summary>
    private static class BodyOnlyUse
    {
        public static int Use() => new System.Text.StringBuilder("x").Length + Uri.UriSchemeHttp.Length;
    }

    /// <summary>"Kvm" for VmmSharp.Kvm, "Arch" for VmmSharp.Arch.X86.Acpi; null for the root and global namespace.</summary>
    private static string? Folder(Type type)
    {
        string? ns = type.Namespace;
        if (ns is null || !ns.StartsWith("VmmSharp.", StringComparison.Ordinal))
        {
            return null;
        }
        string rest = ns["VmmSharp.".Length..];
        int dot = rest.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? rest : rest[..dot];
    }

    private static string Name(Type type) => type.FullName ?? type.Name;

    /// <summary>The types <paramref name="type"/> names in its base types, members' signatures and method bodies.</summary>
    private static HashSet<Type> UsedTypes(Type type)
    {
        var used = new HashSet<Type>();
        void Add(Type? t)
        {
            while (t is not null && (t.HasElementType || t.IsByRef || t.IsPointer))
            {
                t = t.GetElementType();
            }
            if (t is null || t.IsGenericParameter || !used.Add(t))
            {
                return;
            }
            if (t.IsGenericType)
            {
                foreach (Type a in t.GetGenericArguments())
                {
                    Add(a);
                }
            }
        }
        Add(type.BaseType);
        foreach (Type i in type.GetInterfaces())
        {
            Add(i);
        }
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (FieldInfo f in type.GetFields(all))
        {
            Add(f.FieldType);
        }
        foreach (PropertyInfo p in type.GetProperties(all))
        {
            Add(p.PropertyType);
        }
        foreach (MethodBase m in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
        {
            if (m is MethodInfo mi)
            {
                Add(mi.ReturnType);
            }
            foreach (ParameterInfo p in m.GetParameters())
            {
                Add(p.ParameterType);
            }
            foreach (Type t in BodyTypes(m))
            {
                Add(t);
            }
        }
        return used;
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>The types whose members or tokens <paramref name="method"/>'s IL refers to.</summary>
    private static IEnumerable<Type> BodyTypes(MethodBase method)
    {
        byte[]? il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
        {
            yield break;
        }
        Type[]? typeArgs = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        Type[]? methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        int i = 0;
        while (i < il.Length)
        {
            short value = il[i] == 0xfe ? (short)(0xfe00 | il[i + 1]) : il[i];
            i += il[i] == 0xfe ? 2 : 1;
            OpCode op = OpCodesByValue[value];
            switch (op.OperandType)
            {
                case OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineType or OperandType.InlineTok:
                    MemberInfo member = method.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs)!;
                    if (member is Type t)
                    {
                        yield return t;
                    }
                    else if (member.DeclaringType is { } declaring)
                    {
                        yield return declaring;
                    }
                    if (member is FieldInfo field)
                    {
                        yield return field.FieldType;
                    }
                    i += 4;
                    break;
                case OperandType.InlineSwitch:
                    i += 4 + (4 * BitConverter.ToInt32(il, i));
                    break;
                default:
                    i += op.OperandType switch
                    {
                        OperandType.InlineNone => 0,
                        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                        OperandType.InlineVar => 2,
                        OperandType.InlineI8 or OperandType.InlineR => 8,
                        _ => 4,
                    };
                    break;
            }
        }
    }
}
