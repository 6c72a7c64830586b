using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Runtime.Nn.Checkpoints;

/// <summary>A reference to an allow-listed Python global (module.name).</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>An ordered Python dict (also OrderedDict).</summary>
internal sealed class PyDict
{
    public readonly List<KeyValuePair<object?, object?>> Items = new();

    public void Set(object? key, object? value)
    {
        for (int i = 0; i < Items.Count; i++)
            if (Equals(Items[i].Key, key)) { Items[i] = new(key, value); return; }
        Items.Add(new(key, value));
    }
}

/// <summary>
/// A pickle reader that executes nothing: it knows a fixed set of opcodes (protocol 2, plus FRAME,
/// SHORT_BINUNICODE, MEMOIZE and STACK_GLOBAL) and lets a caller-supplied hook build the objects of
/// an allow-list of globals. Any other global or opcode is refused with a <see cref="CheckpointFormatException"/>.
/// </summary>
internal sealed class SafeUnpickler
{
    private static readonly object Mark = new();

    private readonly byte[] _data;
    private int _pos;
    private readonly List<object?> _stack = new();
    private readonly Dictionary<long, object?> _memo = new();
    private readonly Func<PyGlobal, bool> _allowed;
    private readonly Func<PyGlobal, object?[], object?> _call;
    private readonly Func<object?, object?> _persistentLoad;

    public SafeUnpickler(byte[] data, Func<PyGlobal, bool> allowed, Func<PyGlobal, object?[], object?> call, Func<object?, object?> persistentLoad)
    {
        _data = data;
        _allowed = allowed;
        _call = call;
        _persistentLoad = persistentLoad;
    }

    private static CheckpointFormatException Err(string msg) => new($"pickle: {msg}");

    private ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Err($"truncated data at offset {_pos} (needs {n} more bytes)");
        var s = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return s;
    }

    private string Line()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Err("truncated GLOBAL line");
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private object? Pop()
    {
        if (_stack.Count == 0) throw Err("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        if (ReferenceEquals(v, Mark)) throw Err("unexpected MARK on the stack");
        return v;
    }

    private object? Peek() => _stack.Count == 0 || ReferenceEquals(_stack[^1], Mark) ? throw Err("stack underflow") : _stack[^1];

    private List<object?> PopMark()
    {
        int i = _stack.LastIndexOf(Mark);
        if (i < 0) throw Err("MARK not found");
        var items = _stack.GetRange(i + 1, _stack.Count - i - 1);
        _stack.RemoveRange(i, _stack.Count - i);
        return items;
    }

    private PyGlobal Global(string module, string name)
    {
        var g = new PyGlobal(module, name);
        if (!_allowed(g)) throw Err($"refusing global '{g.FullName}': not on the allow-list (pickle is code; nothing was executed)");
        return g;
    }

    private void Memoize(long idx) => _memo[idx] = Peek();

    private object? Get(long idx) => _memo.TryGetValue(idx, out var v) ? v : throw Err($"memo key {idx} not found");

    private static void SetItem(object? target, object? key, object? value)
    {
        if (target is PyDict d) d.Set(key, value);
        else throw Err("SETITEM target is not a dict");
    }

    public object? Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Err("truncated: no STOP opcode");
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        int p = Take(1)[0];
                        if (p > 5) throw Err($"unsupported protocol {p}");
                        break;
                    }
                case 0x95: Take(8); break; // FRAME: the framing length is informational
                case (byte)'.': return Pop(); // STOP
                case (byte)'(': _stack.Add(Mark); break;
                case (byte)'}': _stack.Add(new PyDict()); break;
                case (byte)']': _stack.Add(new List<object?>()); break;
                case (byte)')': _stack.Add(Array.Empty<object?>()); break;
                case (byte)'N': _stack.Add(null); break;
                case 0x88: _stack.Add(true); break;
                case 0x89: _stack.Add(false); break;
                case (byte)'X': { long n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); _stack.Add(Encoding.UTF8.GetString(Take(n))); break; }
                case 0x8c: { int n = Take(1)[0]; _stack.Add(Encoding.UTF8.GetString(Take(n))); break; }
                case 0x8d: { long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(Take(8)); _stack.Add(Encoding.UTF8.GetString(Take(n))); break; }
                case (byte)'B': { long n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); _stack.Add(Take(n).ToArray()); break; }
                case (byte)'C': { int n = Take(1)[0]; _stack.Add(Take(n).ToArray()); break; }
                case (byte)'J': _stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': _stack.Add((long)Take(1)[0]); break;
                case (byte)'M': _stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case 0x8a: // LONG1
                    {
                        int n = Take(1)[0];
                        var b = new BigInteger(Take(n), isUnsigned: false, isBigEndian: false);
                        if (b < long.MinValue || b > long.MaxValue) throw Err($"integer {b} does not fit in 64 bits");
                        _stack.Add((long)b);
                        break;
                    }
                case (byte)'G': _stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case (byte)'t': _stack.Add(PopMark().ToArray()); break;
                case 0x85: { var a = Pop(); _stack.Add(new[] { a }); break; }
                case 0x86: { var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); _stack.Add(new[] { a, b, c }); break; }
                case (byte)'l': _stack.Add(PopMark()); break;
                case (byte)'d':
                    {
                        var items = PopMark();
                        if (items.Count % 2 != 0) throw Err("DICT with an odd number of items");
                        var d = new PyDict();
                        for (int i = 0; i < items.Count; i += 2) d.Set(items[i], items[i + 1]);
                        _stack.Add(d);
                        break;
                    }
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItem(Peek(), k, v); break; }
                case (byte)'u':
                    {
                        var items = PopMark();
                        if (items.Count % 2 != 0) throw Err("SETITEMS with an odd number of items");
                        var target = Peek();
                        for (int i = 0; i < items.Count; i += 2) SetItem(target, items[i], items[i + 1]);
                        break;
                    }
                case (byte)'a': { var v = Pop(); if (Peek() is List<object?> l) l.Add(v); else throw Err("APPEND target is not a list"); break; }
                case (byte)'e': { var items = PopMark(); if (Peek() is List<object?> l) l.AddRange(items); else throw Err("APPENDS target is not a list"); break; }
                case (byte)'q': Memoize(Take(1)[0]); break;
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break;
                case 0x94: Memoize(_memo.Count); break;
                case (byte)'h': _stack.Add(Get(Take(1)[0])); break;
                case (byte)'j': _stack.Add(Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                case (byte)'0': Pop(); break;
                case (byte)'1': PopMark(); break;
                case (byte)'2': _stack.Add(Peek()); break;
                case (byte)'c': { var module = Line(); var name = Line(); _stack.Add(Global(module, name)); break; }
                case 0x93:
                    {
                        var name = Pop() as string ?? throw Err("STACK_GLOBAL name is not a string");
                        var module = Pop() as string ?? throw Err("STACK_GLOBAL module is not a string");
                        _stack.Add(Global(module, name));
                        break;
                    }
                case (byte)'R':
                    {
                        var args = Pop() as object?[] ?? throw Err("REDUCE arguments are not a tuple");
                        var f = Pop() as PyGlobal ?? throw Err("REDUCE target is not an allow-listed global");
                        _stack.Add(_call(f, args));
                        break;
                    }
                case (byte)'b':
                    {
                        Pop(); // state: only OrderedDict's __dict__ (_metadata) reaches here; it is dropped
                        Peek();
                        break;
                    }
                case (byte)'Q': _stack.Add(_persistentLoad(Pop())); break;
                default:
                    throw Err($"opcode 0x{op:x2} ('{(op >= 32 && op < 127 ? (char)op : '?')}') at offset {_pos - 1} is not supported");
            }
        }
    }
}
